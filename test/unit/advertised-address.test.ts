// What a sidecar announces as its instance address when instance.address is not set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { advertisedAddress } from '../../src/core/advertised-address.js';

test('the bound inbound address is announced as is; 0.0.0.0 becomes an external IPv4; unix needs instance.address', () => {
  assert.equal(advertisedAddress({ kind: 'tcp', host: '127.0.0.1', port: 15006 }), '127.0.0.1:15006');
  assert.equal(advertisedAddress({ kind: 'tcp', host: '::1', port: 15006 }), '[::1]:15006');
  const external = Object.values(networkInterfaces())
    .flatMap((a) => a ?? [])
    .find((a) => a.family === 'IPv4' && !a.internal);
  if (external) assert.equal(advertisedAddress({ kind: 'tcp', host: '0.0.0.0', port: 15006 }), `${external.address}:15006`);
  else assert.throws(() => advertisedAddress({ kind: 'tcp', host: '0.0.0.0', port: 15006 }), /instance\.address/);
  assert.throws(() => advertisedAddress({ kind: 'unix', path: '/tmp/in.sock' }), /instance\.address: required when listeners\.inbound is a unix socket/);
});
