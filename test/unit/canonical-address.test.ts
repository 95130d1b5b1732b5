import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHost, isLocalAddress, isLoopback } from '../../src/core/canonical-address.js';
import { parseAuthority } from '../../src/routing/authority.js';

test('every IPv4 spelling a resolver accepts becomes the dotted quad', () => {
  for (const h of ['127.1', '127.0.0.01', '2130706433', '0x7f000001', '0177.0.0.1', '0x7f.1', '127.0.0.1', '127.000.000.001']) assert.equal(canonicalHost(h), '127.0.0.1', h);
  assert.equal(canonicalHost('0'), '0.0.0.0');
  assert.equal(canonicalHost('10.1.2.3'), '10.1.2.3');
});

test('IPv6 is compressed, and IPv4-mapped IPv6 becomes its IPv4 address', () => {
  assert.equal(canonicalHost('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(canonicalHost('::ffff:7f00:1'), '127.0.0.1');
  assert.equal(canonicalHost('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(canonicalHost('::'), '::');
  assert.equal(canonicalHost('2001:db8::1'), '2001:db8::1');
});

test('names stay names; numeric-looking hosts that are no address are refused', () => {
  for (const h of ['users', 'users.mesh', 'api.example.com', 'v1.api', 'a1']) assert.equal(canonicalHost(h), h);
  for (const h of ['09', '1.2.3.4.5', '256.1.1.1', 'abc.0x1', '4294967296']) assert.equal(canonicalHost(h), null, h);
});

test('local means loopback or unspecified', () => {
  for (const h of ['127.0.0.1', '127.9.9.9', '::1', 'localhost', 'x.localhost', '0.0.0.0', '::']) assert.ok(isLocalAddress(h), h);
  assert.ok(!isLoopback('0.0.0.0'));
  assert.ok(!isLocalAddress('10.0.0.1'));
});

test('the authority parser hands out canonical hosts', () => {
  assert.deepEqual(parseAuthority('0x7f000001:15000'), { host: '127.0.0.1', port: 15000 });
  assert.deepEqual(parseAuthority('[::ffff:7f00:1]:15000'), { host: '127.0.0.1', port: 15000 });
  assert.deepEqual(parseAuthority('0:80'), { host: '0.0.0.0', port: 80 });
  assert.throws(() => parseAuthority('999.1.1.1:80'), /not a valid address/);
});
