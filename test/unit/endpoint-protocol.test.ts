import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toEndpoint } from '../../src/registry/normalize.js';
import { encodeInstance, parseInstanceValue } from '../../src/registry/etcd-records.js';
import { parseConfigObject } from '../../src/config/load.js';

test('endpoint protocol: http1 and http2 are kept, auto (the default) is left out', () => {
  assert.equal(toEndpoint({ address: '10.0.0.1:50051', protocol: 'http2' })?.protocol, 'http2');
  assert.equal(toEndpoint({ address: '10.0.0.1:80', protocol: 'http1' })?.protocol, 'http1');
  assert.equal(toEndpoint({ address: '10.0.0.1:80', protocol: 'auto' })?.protocol, undefined);
  assert.equal(toEndpoint('10.0.0.1:80')?.protocol, undefined);
});

test('etcd records carry protocol; anything else is refused with the field named', () => {
  const e = parseInstanceValue(encodeInstance({ address: '10.0.0.1:50051', protocol: 'http2' }));
  assert.equal(e.protocol, 'http2');
  assert.throws(() => parseInstanceValue('{"address":"10.0.0.1:1","protocol":"h3"}'), /protocol: must be http1, http2 or auto/);
});

test('the config schema accepts protocol on endpoint objects and refuses other values', () => {
  parseConfigObject({ services: { g: { endpoints: [{ address: '10.0.0.1:50051', protocol: 'http2' }] } } }, 'test');
  assert.throws(() => parseConfigObject({ services: { g: { endpoints: [{ address: '10.0.0.1:50051', protocol: 'grpc' }] } } }, 'test'));
});
