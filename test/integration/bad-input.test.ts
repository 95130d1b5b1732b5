// Bad input gets a clear answer or a clean close, and the sidecar keeps serving others.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rawExchange, viaSidecar } from '../helpers/http.js';

let up: TestUpstream;
let slow: TestUpstream;
let broken: TestUpstream;
let mesh: RunningSidecar;

before(async () => {
  up = await startUpstream('up');
  slow = await startUpstream('slow', (_req, res) => {
    setTimeout(() => res.end('late'), 3000).unref();
  });
  // Promises 1000 bytes, sends 10, then closes: an upstream dying mid-response.
  broken = await startUpstream('broken', (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' });
    res.write('0123456789');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  mesh = await startSidecar({
    limits: { maxHeaderBytes: 4096, maxUriBytes: 1024 },
    services: {
      up: { endpoints: [up.address] },
      slow: { endpoints: [slow.address], timeouts: { requestMs: 300 } },
      broken: { endpoints: [broken.address] },
    },
  });
});
after(async () => {
  await mesh.stop();
  await Promise.all([up.close(), slow.close(), broken.close()]);
});

async function stillServing(): Promise<void> {
  const r = await viaSidecar(mesh.outbound, 'up', '/still');
  assert.equal(r.status, 200);
}

test('garbage bytes instead of HTTP get a 400 and a close', async () => {
  const got = await rawExchange(mesh.outbound, Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
  assert.match(got, /^HTTP\/1\.1 400 /);
  assert.match(got, /x-dreammesh-error: MESH_ERR_BAD_REQUEST/);
  await stillServing();
});

test('Content-Length together with Transfer-Encoding is rejected before reaching the upstream', async () => {
  const before = up.seen.length;
  const got = await rawExchange(mesh.outbound, 'POST /smuggle HTTP/1.1\r\nHost: up\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: up\r\n\r\n');
  assert.match(got, /^HTTP\/1\.1 400 /);
  assert.equal(up.seen.length, before, 'nothing reached the upstream');
  await stillServing();
});

test('framing violations are 400s: bad Content-Length, non-final chunked, obs-fold, bare LF, bad chunk size', async () => {
  const cases = [
    'POST / HTTP/1.1\r\nHost: up\r\nContent-Length: 5, 6\r\n\r\nhello',
    'POST / HTTP/1.1\r\nHost: up\r\nContent-Length: abc\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: up\r\nX-Folded: a\r\n  b\r\n\r\n',
    'GET / HTTP/1.1\nHost: up\n\n',
    'POST / HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  ];
  const before = up.seen.length;
  for (const c of cases) {
    const got = await rawExchange(mesh.outbound, c);
    assert.match(got, /^HTTP\/1\.1 400 /, JSON.stringify(c));
  }
  assert.equal(up.seen.length, before);
  await stillServing();
});

test('header lines over the limit get a 431', async () => {
  const got = await rawExchange(mesh.outbound, `GET / HTTP/1.1\r\nHost: up\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
  assert.match(got, /^HTTP\/1\.1 431 /);
  assert.match(got, /MESH_ERR_HEADERS_TOO_LARGE/);
  await stillServing();
});

test('an over-long request target gets a 414', async () => {
  const r = await viaSidecar(mesh.outbound, 'up', '/' + 'a'.repeat(2000));
  assert.equal(r.status, 414);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_URI_TOO_LONG');
});

test('a missing Host is a 400 MESH_ERR_BAD_HOST', async () => {
  const got = await rawExchange(mesh.outbound, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(got, /^HTTP\/1\.1 400 /);
  assert.match(got, /MESH_ERR_BAD_HOST/);
});

test('an upstream slower than the request timeout is a 504', async () => {
  const r = await viaSidecar(mesh.outbound, 'slow', '/');
  assert.equal(r.status, 504);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_UPSTREAM_TIMEOUT');
  await stillServing();
});

test('an upstream that closes mid-response: the client sees a truncated response, never a fake complete one', async () => {
  const got = await rawExchange(mesh.outbound, 'GET / HTTP/1.1\r\nHost: broken\r\n\r\n');
  assert.match(got, /^HTTP\/1\.1 200 /);
  const body = got.slice(got.indexOf('\r\n\r\n') + 4);
  assert.equal(body, '0123456789');
  await stillServing();
});

test('a client that disconnects mid-body does not disturb other clients', async () => {
  await new Promise<void>((resolve) => {
    const [host, port] = mesh.outbound.split(':');
    const s = connect({ host: host!, port: Number(port) }, () => {
      s.write('POST /upload HTTP/1.1\r\nHost: up\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000));
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 100);
    });
  });
  await stillServing();
  const text = await (await fetch(`http://${mesh.admin}/metrics`)).text();
  assert.match(text, /dreammesh_requests_total\{mode="explicit",service="up",code="499"\} [1-9]/);
});

test('a client that sends one byte and stalls does not block anyone', async () => {
  const [host, port] = mesh.outbound.split(':');
  const s = connect({ host: host!, port: Number(port) });
  s.write('G');
  try {
    await stillServing();
  } finally {
    s.destroy();
  }
});
