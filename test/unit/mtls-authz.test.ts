// authz.allow matching and SPIFFE ID parsing: the pure parts of mTLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowsRequest, allowsTunnel } from '../../src/tls/authz.js';
import { serviceOf, serviceSpiffeId } from '../../src/tls/spiffe.js';
import { parseInstanceValue, encodeInstance } from '../../src/registry/etcd-records.js';
import { toEndpoint } from '../../src/registry/normalize.js';

const rules = [{ from: ['orders'], methods: ['GET'], paths: ['/api/'] }, { from: ['admin'] }];

test('a request is allowed when one rule matches every field it gives', () => {
  assert.equal(allowsRequest([], undefined, 'POST', '/anything'), true, 'no rules: everything');
  assert.equal(allowsRequest(rules, 'orders', 'GET', '/api/users?x=1'), true);
  assert.equal(allowsRequest(rules, 'orders', 'POST', '/api/users'), false, 'method');
  assert.equal(allowsRequest(rules, 'orders', 'GET', '/admin'), false, 'path');
  assert.equal(allowsRequest(rules, 'billing', 'GET', '/api/users'), false, 'caller');
  assert.equal(allowsRequest(rules, undefined, 'GET', '/api/users'), false, 'unauthenticated');
  assert.equal(allowsRequest(rules, 'admin', 'DELETE', '/anything'), true, 'a rule without methods and paths');
  assert.equal(allowsRequest([{ paths: ['/public'] }], undefined, 'GET', '/public/x'), true, 'a rule without from lets plaintext callers in');
});

test('dot segments and encoded slashes or dots never match a path prefix', () => {
  for (const p of ['/api/../admin', '/api/./x', '/api/%2e%2e/admin', '/api/%2fx', '/api/%2E', '/api/..', '/api\\..\\admin']) {
    assert.equal(allowsRequest(rules, 'orders', 'GET', p), false, p);
  }
  assert.equal(allowsRequest(rules, 'orders', 'GET', '/api/a..b'), true, 'dots inside a segment are fine');
});

test('tunnels: only rules without methods and paths allow them', () => {
  assert.equal(allowsTunnel([], 'x'), true);
  assert.equal(allowsTunnel(rules, 'orders'), false);
  assert.equal(allowsTunnel(rules, 'admin'), true);
  assert.equal(allowsTunnel([{ from: ['a'] }], undefined), false);
});

test('SPIFFE IDs name a service of the trust domain', () => {
  assert.equal(serviceSpiffeId('dreammesh.local', 'users'), 'spiffe://dreammesh.local/service/users');
  assert.equal(serviceOf('spiffe://dreammesh.local/service/users', 'dreammesh.local'), 'users');
  assert.equal(serviceOf('spiffe://other.org/service/users', 'dreammesh.local'), undefined);
  assert.equal(serviceOf('spiffe://dreammesh.local/ns/default/sa/users', 'dreammesh.local'), undefined);
  assert.equal(serviceOf('spiffe://dreammesh.local/service/a/b', 'dreammesh.local'), undefined);
});

test('registry records carry mtls through etcd and config', () => {
  const e = parseInstanceValue('{"address":"10.0.0.1:15006","mtls":true}');
  assert.equal(e.mtls, true);
  assert.equal(parseInstanceValue('{"address":"10.0.0.1:15006"}').mtls, undefined);
  assert.throws(() => parseInstanceValue('{"address":"10.0.0.1:15006","mtls":"yes"}'), /mtls: must be true or false/);
  assert.deepEqual(JSON.parse(encodeInstance({ address: 'h:1', mtls: true })), { address: 'h:1', weight: 1, labels: {}, mtls: true });
  assert.deepEqual(JSON.parse(encodeInstance({ address: 'h:1' })), { address: 'h:1', weight: 1, labels: {} });
  assert.equal(toEndpoint({ address: '10.0.0.1:1', mtls: true })?.mtls, true);
  assert.equal(toEndpoint('10.0.0.1:1')?.mtls, undefined);
});
