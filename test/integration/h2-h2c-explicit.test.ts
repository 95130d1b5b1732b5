// Plain h2c (not gRPC) in explicit mode beside HTTP/1 on the same port: curl
// --http2-prior-knowledge is routed by :authority (domain suffix stripped like Host), balanced
// over three HTTP/2 servers, keeps bodies and trailers, and gets the usual JSON errors; HTTP/1
// requests on the same listener are untouched, including one whose method is "PRI".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, type Http2Server } from 'node:http2';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rawRequest } from '../helpers/http1-wire.js';

const run = promisify(execFile);
let h2servers: Http2Server[] = [];
let h1: TestUpstream;
/** Not in the registry: an external destination. */
let ext: TestUpstream;
let mesh: SpawnedSidecar;

before(async () => {
  for (let i = 0; i < 3; i++) {
    const s = createServer();
    s.on('stream', (st, h) => {
      const chunks: Buffer[] = [];
      st.on('data', (c: Buffer) => chunks.push(c));
      st.on('end', () => {
        st.respond({ ':status': 200, 'x-server': String(i), 'x-authority': String(h[':authority']) }, { waitForTrailers: true });
        st.once('wantTrailers', () => st.sendTrailers({ 'x-trailer': 'done' }));
        st.end(`server ${i} ${String(h[':method'])} ${String(h[':path'])} ${Buffer.concat(chunks).length}\n`);
      });
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    h2servers.push(s);
  }
  h1 = await startUpstream('h1');
  ext = await startUpstream('ext');
  const port = (s: Http2Server): number => (s.address() as { port: number }).port;
  mesh = await spawnSidecar({
    egress: { allow: ['127.0.0.1'] },
    services: {
      web: { endpoints: h2servers.map((s) => ({ address: `127.0.0.1:${port(s)}`, protocol: 'http2' })) },
      old: { endpoints: [h1.address] },
      bridged: { endpoints: [{ address: h1.address, protocol: 'http1' }] },
    },
  });
});

after(async () => {
  await mesh?.stop();
  for (const s of h2servers) s.close();
  await h1?.close();
  await ext?.close();
  h2servers = [];
});

async function curl(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run('curl', ['-s', '--max-time', '10', ...args], { encoding: 'utf8' });
    return { code: 0, out: r.stdout };
  } catch (e) {
    const x = e as { code: number; stdout: string };
    return { code: x.code, out: x.stdout };
  }
}

test('curl --http2-prior-knowledge through explicit mode: routed by :authority, balanced, body in both directions', async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = await curl(['--http2-prior-knowledge', '-H', 'Host: web.mesh', '--data-binary', 'x'.repeat(100_000), '-D', '-', `http://${mesh.outbound}/up?i=${i}`]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^HTTP\/2 200/);
    assert.match(r.out, /x-authority: web\.mesh/);
    const m = /server (\d) POST \/up\?i=\d+ 100000/.exec(r.out);
    assert.ok(m, r.out);
    assert.match(r.out, /x-trailer: done/, 'trailers pass through');
    seen.add(m[1]!);
  }
  assert.equal(seen.size, 3, `all three servers answered: ${[...seen].join(',')}`);
});

test('HTTP/2 errors are the usual JSON answers with x-dreammesh-error', async () => {
  const r = await curl(['--http2-prior-knowledge', '-H', 'Host: nosuch', '-D', '-', `http://${mesh.outbound}/`]);
  assert.match(r.out, /^HTTP\/2 404/);
  assert.match(r.out, /x-dreammesh-error: MESH_ERR_NO_ROUTE/);
  assert.match(r.out, /"known":\["bridged","old","web"\]/);
});

test('HTTP/1 on the same listener is unaffected (and a "PRI" HTTP/1 request is still HTTP/1)', async () => {
  const r = await curl(['-H', 'Host: old', '-D', '-', `http://${mesh.outbound}/plain`]);
  assert.match(r.out, /^HTTP\/1\.1 200/);
  const pri = await rawRequest(mesh.outbound, [{ write: 'PRI /x HTTP/1.1\r\nHost: old\r\n\r\n' }], { ms: 3000 });
  assert.match(pri.data.toString('latin1'), /^HTTP\/1\.1 \d{3}/);
  // And the sidecar still serves both protocols afterwards.
  const again = await curl(['--http2-prior-knowledge', '-H', 'Host: web', `http://${mesh.outbound}/`]);
  assert.match(again.out, /server \d GET \/ 0/);
});

test('protocol: http1 endpoints get HTTP/2 requests as HTTP/1.1; protocol: http2 endpoints refuse HTTP/1 requests', async () => {
  const r = await curl(['--http2-prior-knowledge', '-H', 'Host: bridged', '--data-binary', 'hello', '-D', '-', `http://${mesh.outbound}/bridge`]);
  assert.match(r.out, /^HTTP\/2 200/, r.out);
  const seen = h1.seen.find((q) => q.url === '/bridge');
  assert.ok(seen, 'the HTTP/1 upstream got the request');
  assert.equal(seen.headers.host, 'bridged');
  assert.equal(seen.method, 'POST');
  assert.equal(seen.bodyBytes, 5);
  const refused = await curl(['-H', 'Host: web', '-D', '-', `http://${mesh.outbound}/`]);
  assert.match(refused.out, /^HTTP\/1\.1 502/);
  assert.match(refused.out, /x-dreammesh-error: MESH_ERR_UPSTREAM_PROTOCOL/);
});

test('an external destination (egress allowed) gets plain HTTP/2 requests as HTTP/1.1', async () => {
  const r = await curl(['--http2-prior-knowledge', '-H', `Host: ${ext.address}`, '-D', '-', `http://${mesh.outbound}/outside`]);
  assert.match(r.out, /^HTTP\/2 200/, r.out);
  assert.ok(ext.seen.some((q) => q.url === '/outside'));
});
