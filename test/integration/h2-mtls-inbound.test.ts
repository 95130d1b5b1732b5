// The inbound rules of HTTP/1, per HTTP/2 stream: client-sent x-dreammesh-* headers dropped,
// x-dreammesh-caller from the verified mTLS peer only, the caller in metrics and the access log,
// a unix-socket app spoken to in HTTP/1.1 (gRPC refused with 13), an app that is down (14,
// MESH_ERR_APP_UNAVAILABLE) and limits.maxPendingRequests for the app.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2Server, connect as h2Connect, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMtlsMesh } from '../helpers/mtls-mesh.js';
import { spawnSidecar } from '../helpers/sidecar.js';
import { until } from '../helpers/until.js';

interface H2Answer {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: IncomingHttpHeaders;
}

/** One request over a fresh h2c connection (prior knowledge). */
function h2Request(address: string, headers: OutgoingHttpHeaders, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const c = h2Connect(`http://${address}`);
    c.on('error', reject);
    const r = c.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers }, { endStream: body === undefined });
    let h: IncomingHttpHeaders = {};
    let t: IncomingHttpHeaders = {};
    let b = '';
    r.on('response', (x) => (h = x));
    r.on('trailers', (x: IncomingHttpHeaders) => (t = x));
    r.on('data', (d: Buffer) => (b += d.toString()));
    r.on('end', () => {
      c.close();
      resolve({ headers: h, body: b, trailers: t });
    });
    r.on('error', reject);
    if (body !== undefined) r.end(body);
  });
}

/** An h2c app that answers with the request headers it got (JSON). */
async function headerEchoApp(): Promise<{ address: string; close(): Promise<void> }> {
  const s = createH2Server();
  s.on('stream', (st, h) => {
    st.on('error', () => {});
    st.respond({ ':status': 200, 'content-type': 'application/json' });
    st.end(JSON.stringify(h));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${(s.address() as { port: number }).port}`, close: () => new Promise((r) => s.close(() => r())) };
}

test('over mTLS: client-sent x-dreammesh-* never reach the app, x-dreammesh-caller is the verified peer; the access log names it', async () => {
  const appSrv = await headerEchoApp();
  const m = await startMtlsMesh({ bApp: appSrv.address, bExtra: { accessLog: { enabled: true } } });
  try {
    const r = await h2Request(m.a.outbound, { ':path': '/who', ':authority': 'b', 'x-dreammesh-caller': 'admin', 'x-dreammesh-anything': '1' });
    assert.equal(r.headers[':status'], 200);
    const seen = JSON.parse(r.body) as Record<string, string>;
    assert.equal(seen['x-dreammesh-caller'], 'a');
    assert.equal(seen['x-dreammesh-anything'], undefined);
    assert.equal(seen[':path'], '/who');
    await until('B logged the call with its caller', () => m.b.stdout().includes('"caller":"a"'));
    const line = m.b
      .stdout()
      .split('\n')
      .find((l) => l.includes('"caller":"a"'))!;
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(entry.mode, 'inbound');
    assert.equal(entry.path, '/who');
    assert.equal(entry.status, 200);
  } finally {
    await m.close();
    await appSrv.close();
  }
});

test('an mTLS endpoint with protocol http1: plain HTTP/2 requests are bridged to HTTP/1.1 over mTLS, never plaintext', async () => {
  const m = await startMtlsMesh({ bEndpoint: { protocol: 'http1' } });
  try {
    const r = await h2Request(m.a.outbound, { ':path': '/bridged', ':authority': 'b' });
    assert.equal(r.headers[':status'], 200);
    const seen = m.app.seen.find((x) => x.url === '/bridged');
    assert.ok(seen !== undefined, 'the app got the request');
    // B's HTTP/1 inbound knew the caller: the hop was mTLS (strict B closes plaintext anyway).
    assert.equal(seen.headers['x-dreammesh-caller'], 'a');
  } finally {
    await m.close();
  }
});

test('plaintext h2c (mtls off): a client cannot claim a caller', async () => {
  const appSrv = await headerEchoApp();
  const b = await spawnSidecar({ service: 'b', app: appSrv.address });
  try {
    const r = await h2Request(b.inbound, { ':path': '/who', ':authority': 'b', 'x-dreammesh-caller': 'admin' });
    const seen = JSON.parse(r.body) as Record<string, string>;
    assert.equal(seen['x-dreammesh-caller'], undefined);
    assert.match(seen['x-forwarded-for'] ?? '', /127\.0\.0\.1/);
  } finally {
    await b.stop();
    await appSrv.close();
  }
});

test('a unix-socket app: plain HTTP/2 requests are bridged to HTTP/1.1, gRPC calls refused with 13', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-h2unix-'));
  const path = join(dir, 'app.sock');
  const http = createHttpServer((req, res) => res.end(`h1 ${req.method ?? ''} ${req.url ?? ''} ${req.httpVersion}`));
  await new Promise<void>((r) => http.listen(path, r));
  const b = await spawnSidecar({ service: 'b', app: `unix:${path}` });
  try {
    const plain = await h2Request(b.inbound, { ':path': '/x?y=1', ':authority': 'b' });
    assert.equal(plain.headers[':status'], 200);
    assert.equal(plain.body, 'h1 GET /x?y=1 1.1');
    const grpcCall = await h2Request(b.inbound, { ':path': '/mesh.Echo/Unary', ':authority': 'b', 'content-type': 'application/grpc', te: 'trailers' }, '\x00\x00\x00\x00\x00');
    assert.equal(grpcCall.headers['grpc-status'], '13');
    assert.equal(grpcCall.headers['x-dreammesh-error'], 'MESH_ERR_UPSTREAM_PROTOCOL');
    assert.match(String(grpcCall.headers['grpc-message']), /HTTP\/1\.1/);
  } finally {
    await b.stop();
    await new Promise<void>((r) => http.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  }
});

test('the app is down: 14 MESH_ERR_APP_UNAVAILABLE; maxPendingRequests bounds calls waiting for the app', async () => {
  // A port that accepts and never speaks HTTP/2: sessions to it stay connecting until connectMs.
  const held: Socket[] = [];
  const mute = createNetServer((s) => {
    s.on('error', () => {});
    held.push(s);
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  const mutePort = (mute.address() as { port: number }).port;
  const down = createNetServer();
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  const downPort = (down.address() as { port: number }).port;
  await new Promise<void>((r) => down.close(() => r()));
  const grpcHeaders = { ':path': '/mesh.Echo/Unary', ':authority': 'b', 'content-type': 'application/grpc', te: 'trailers' };
  const b1 = await spawnSidecar({ service: 'b', app: `127.0.0.1:${downPort}` });
  const b2 = await spawnSidecar({ service: 'b', app: `127.0.0.1:${mutePort}`, limits: { maxPendingRequests: 1 }, timeouts: { connectMs: 1500 } });
  try {
    const r = await h2Request(b1.inbound, grpcHeaders, '\x00\x00\x00\x00\x00');
    assert.equal(r.headers['grpc-status'], '14');
    assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_APP_UNAVAILABLE');
    const calls = await Promise.all([0, 1, 2].map(() => h2Request(b2.inbound, grpcHeaders, '\x00\x00\x00\x00\x00')));
    const codes = calls.map((c) => String(c.headers['x-dreammesh-error'])).sort();
    // One call waits for the app (its connect times out: the app is unavailable); the others are
    // refused at once.
    assert.deepEqual(codes, ['MESH_ERR_APP_UNAVAILABLE', 'MESH_ERR_LIMIT_EXCEEDED', 'MESH_ERR_LIMIT_EXCEEDED']);
    for (const c of calls) assert.equal(c.headers['grpc-status'], '14');
  } finally {
    await b1.stop();
    await b2.stop();
    for (const s of held) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  }
});
