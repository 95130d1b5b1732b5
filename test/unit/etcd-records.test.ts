// The etcd key layout and record validation (no etcd needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeInstance, instanceKey, parseInstanceKey, parseInstanceValue } from '../../src/registry/etcd-records.js';

test('instance keys: <prefix>services/<service>/<id>', () => {
  assert.equal(instanceKey('/dm/', 'users', '10.0.0.1:80'), '/dm/services/users/10.0.0.1:80');
  assert.deepEqual(parseInstanceKey('/dm/', '/dm/services/users/10.0.0.1:80'), { service: 'users', id: '10.0.0.1:80' });
  assert.deepEqual(parseInstanceKey('/dm/', '/dm/services/users/[::1]:80'), { service: 'users', id: '[::1]:80' });
  for (const bad of ['/dm/services/users', '/dm/services/users/', '/dm/services/users/a/b', '/dm/services/-x/a', '/other/services/users/a', '/dm/services/us ers/a']) {
    assert.equal(parseInstanceKey('/dm/', bad), null, bad);
  }
});

test('records: address required and routable, weight and labels typed, unknown fields ignored', () => {
  const e = parseInstanceValue('{"address":"10.0.0.1:8080","weight":3,"labels":{"version":"v2"},"future":true}');
  assert.deepEqual({ ...e, labels: { ...e.labels } }, { address: '10.0.0.1:8080', host: '10.0.0.1', port: 8080, weight: 3, labels: { version: 'v2' } });
  assert.equal(parseInstanceValue('{"address":"[::1]:80"}').weight, 1);
  const cases: [string, RegExp][] = [
    ['nope', /not JSON/],
    ['[1]', /not a JSON object/],
    ['{}', /address: missing/],
    ['{"address":"host"}', /not host:port/],
    ['{"address":"h:0"}', /not host:port/],
    ['{"address":"0.0.0.0:80"}', /not routable/],
    ['{"address":"h:1","weight":1.5}', /weight/],
    ['{"address":"h:1","weight":-1}', /weight/],
    ['{"address":"h:1","labels":[]}', /labels/],
    ['{"address":"h:1","labels":{"a":1}}', /labels\.a/],
  ];
  for (const [text, why] of cases) assert.throws(() => parseInstanceValue(text), why, text);
  assert.equal(encodeInstance({ address: 'h:1' }), '{"address":"h:1","weight":1,"labels":{}}');
});
