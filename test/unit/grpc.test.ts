import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grpcTimeoutMs, grpcStatusOf, grpcMessage, isGrpc } from '../../src/http2/grpc.js';
import { prefaceAt, H2_PREFACE } from '../../src/http2/preface.js';
import { ERRORS, type ErrorCode } from '../../src/core/errors.js';

test('grpc-timeout: every unit, at most 8 digits, malformed values ignored', () => {
  assert.equal(grpcTimeoutMs('1H'), 3_600_000);
  assert.equal(grpcTimeoutMs('2M'), 120_000);
  assert.equal(grpcTimeoutMs('3S'), 3000);
  assert.equal(grpcTimeoutMs('250m'), 250);
  assert.equal(grpcTimeoutMs('1500u'), 1.5);
  assert.equal(grpcTimeoutMs('99999999n'), 99.999999);
  for (const bad of ['', '1', 'S', '123456789S', '1s', '-1S', '1.5S', ' 1S', undefined]) assert.equal(grpcTimeoutMs(bad), undefined, String(bad));
  assert.equal(grpcTimeoutMs(['1S', '2S']), undefined);
});

test('every sidecar error maps to a gRPC status, unknown services to UNIMPLEMENTED', () => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const s = grpcStatusOf(code);
    assert.ok(Number.isInteger(s) && s > 0 && s <= 16, `${code} → ${s}`);
  }
  assert.equal(grpcStatusOf('MESH_ERR_NO_ROUTE'), 12);
  assert.equal(grpcStatusOf('MESH_ERR_DEADLINE_EXCEEDED'), 4);
  assert.equal(grpcStatusOf('MESH_ERR_UPSTREAM_REFUSED'), 14);
  assert.equal(grpcStatusOf('MESH_ERR_NO_HEALTHY_ENDPOINT'), 14);
  assert.equal(grpcStatusOf('MESH_ERR_FORBIDDEN'), 7);
  for (const c of ['MESH_ERR_PEER_IDENTITY', 'MESH_ERR_PEER_UNTRUSTED', 'MESH_ERR_TLS_HANDSHAKE', 'MESH_ERR_APP_UNAVAILABLE'] as const) assert.equal(grpcStatusOf(c), 14, c);
});

test('grpc-message is percent-encoded ASCII and bounded', () => {
  const m = grpcMessage('no service named "é"\r\nx'.repeat(100));
  assert.match(m, /^[\x20-\x7e]*$/);
  assert.ok(m.length < 4000);
  assert.equal(decodeURIComponent(grpcMessage('a b%c')), 'a b%c');
  // Only '%' and non-printable bytes are encoded: grpc-js decodes no more than that (decodeURI).
  assert.equal(grpcMessage('127.0.0.1:1: expected spiffe://d/service/b, presented x'), '127.0.0.1:1: expected spiffe://d/service/b, presented x');
  assert.equal(decodeURI(grpcMessage('é\r\n')), 'é\r\n');
});

test('isGrpc: application/grpc and its +proto/+json variants', () => {
  assert.ok(isGrpc({ 'content-type': 'application/grpc' }));
  assert.ok(isGrpc({ 'content-type': 'application/grpc+proto' }));
  assert.ok(!isGrpc({ 'content-type': 'application/json' }));
  assert.ok(!isGrpc({}));
});

test('prefaceAt: whole, partial, and not a preface (one byte decides HTTP/1)', () => {
  assert.equal(prefaceAt(H2_PREFACE, 0), 'yes');
  assert.equal(prefaceAt(Buffer.concat([H2_PREFACE, Buffer.from('xyz')]), 0), 'yes');
  assert.equal(prefaceAt(H2_PREFACE.subarray(0, 5), 0), 'maybe');
  assert.equal(prefaceAt(Buffer.from('PRI /x HTTP/1.1\r\n'), 0), 'no');
  assert.equal(prefaceAt(Buffer.from('GET / HTTP/1.1\r\n'), 0), 'no');
});
