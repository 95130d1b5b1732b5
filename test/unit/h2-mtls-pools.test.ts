// HTTP/2 session pools to mTLS endpoints: kept apart from h2c ones and per service (the peer's
// identity is checked against the service routed to), and dropped with their endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from '../../src/config/load.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { Pools } from '../../src/upstream/pools.js';
import type { MeshError } from '../../src/core/errors.js';

const ep = { host: '127.0.0.1', port: 1 };

test('mTLS HTTP/2 pools: per service, apart from h2c, dropped with their endpoint', () => {
  const pools = new Pools(parseConfigObject({}, 'test'), createMetrics());
  const plain = pools.h2(ep, 'b');
  const b = pools.h2({ ...ep, mtls: true }, 'b');
  const c = pools.h2({ ...ep, mtls: true }, 'c');
  assert.notEqual(plain, b);
  assert.notEqual(b, c);
  assert.equal(pools.h2({ ...ep, mtls: true }, 'b'), b, 'reused');
  pools.drop(['127.0.0.1:1']);
  assert.notEqual(pools.h2({ ...ep, mtls: true }, 'b'), b, 'a new pool after the endpoint left');
  assert.notEqual(pools.h2(ep, 'b'), plain);
  let err: MeshError | null = null;
  b.acquire(100, (e) => (err = e));
  assert.equal(err!.code, 'MESH_ERR_UPSTREAM_REFUSED', 'the dropped pool takes no new calls');
  pools.closeAll(true);
});

test('an mTLS endpoint while no identity is loaded: MESH_ERR_TLS_HANDSHAKE, nothing thrown', () => {
  const pools = new Pools(parseConfigObject({}, 'test'), createMetrics());
  let err: MeshError | null = null;
  pools.h2({ ...ep, mtls: true }, 'b').acquire(100, (e) => (err = e));
  assert.equal(err!.code, 'MESH_ERR_TLS_HANDSHAKE');
  assert.match(err!.message, /no identity/);
  pools.closeAll(true);
});
