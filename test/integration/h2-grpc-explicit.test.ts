// gRPC in explicit mode: a grpc-js client whose channel targets the sidecar and names the
// service with grpc.default_authority. Three grpc-js servers behind one service: calls over
// one channel are balanced per call, every call shape completes, the client's deadline is the
// call's deadline at the sidecar, and the sidecar's own errors are gRPC statuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, constants } from 'node:http2';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricSum } from '../helpers/http1-mesh.js';
import { deadPort } from '../helpers/upstream.js';
import { startGrpcServers, echoClient, echoConfig, spreadOf, unary, grpcError, grpc, type GrpcServers, type Msg } from '../helpers/grpc-mesh.js';

let servers: GrpcServers;
let mesh: SpawnedSidecar;
let dead: number;

before(async () => {
  servers = await startGrpcServers(3);
  dead = await deadPort();
  mesh = await spawnSidecar(
    echoConfig(servers.addresses, {
      services: { ...(echoConfig(servers.addresses).services as object), gone: { endpoints: [`127.0.0.1:${dead}`] }, legacy: { endpoints: [{ address: servers.addresses[0]!, protocol: 'http1' }] } },
    }),
  );
});

after(async () => {
  await mesh?.stop();
  await servers?.stop();
});

test('60 unary calls over one channel reach all three servers', async () => {
  const c = echoClient(mesh.outbound, 'echo');
  try {
    const seen = await spreadOf(c, 60, 3);
    assert.equal(
      seen.reduce((a, b) => a + b, 0),
      60,
    );
    for (const [i, n] of seen.entries()) assert.ok(n >= 5, `server ${i} got ${n} of 60 calls: ${seen.join(',')}`);
  } finally {
    c.close();
  }
  const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.ok(metricSum(m, 'dreammesh_grpc_calls_total', { mode: 'explicit', service: 'echo', grpc_status: '0' }) >= 60, 'grpc_status="0" counted per call');
});

test('server streaming, client streaming and bidi calls complete', async () => {
  const c = echoClient(mesh.outbound, 'echo.mesh');
  try {
    const got: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = c.serverStream({ n: 5 });
      s.on('data', (m: Msg) => got.push(m));
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    assert.deepEqual(
      got.map((m) => m.n),
      [0, 1, 2, 3, 4],
    );
    const counted = await new Promise<Msg>((resolve, reject) => {
      const w = c.clientStream(new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!)));
      for (let i = 0; i < 7; i++) w.write({ text: `m${i}` });
      w.end();
    });
    assert.equal(counted.n, 7);
    const echoed = await new Promise<string[]>((resolve, reject) => {
      const d = c.bidi();
      const out: string[] = [];
      d.on('data', (m: Msg) => {
        out.push(m.text!);
        if (out.length < 4) d.write({ text: `ping${out.length}` });
        else d.end();
      });
      d.on('error', reject);
      d.on('end', () => resolve(out));
      d.write({ text: 'ping0' });
    });
    assert.deepEqual(echoed, ['ping0', 'ping1', 'ping2', 'ping3']);
  } finally {
    c.close();
  }
});

test("the client's deadline expires: DEADLINE_EXCEEDED (4), and the sidecar cancels the upstream call", async () => {
  const c = echoClient(mesh.outbound, 'echo');
  try {
    const before = servers.cancelled.reduce((a, b) => a + b, 0);
    const started = Date.now();
    await assert.rejects(unary(c, { delayMs: 3000 }, 300), (e) => grpcError(e).code === Number(grpc.status.DEADLINE_EXCEEDED));
    assert.ok(Date.now() - started < 2500);
    await waitFor(() => servers.cancelled.reduce((a, b) => a + b, 0) > before, 'the server saw the call cancelled');
  } finally {
    c.close();
  }
});

test('grpc-timeout is enforced by the sidecar itself: Trailers-Only grpc-status 4 with MESH_ERR_DEADLINE_EXCEEDED', async () => {
  // A raw HTTP/2 client with no deadline of its own: only the sidecar can end the call.
  const s = connect(`http://${mesh.outbound}`);
  try {
    const body = Buffer.from(JSON.stringify({ delayMs: 3000 }));
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
    const req = s.request({ ':method': 'POST', ':path': '/mesh.Echo/Unary', ':authority': 'echo', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '250m' });
    req.end(frame);
    const started = Date.now();
    const [h, flags] = await new Promise<[Record<string, unknown>, number]>((resolve, reject) => {
      req.once('response', (hh, f) => resolve([hh, f]));
      req.once('error', reject);
    });
    assert.equal(h['grpc-status'], '4');
    assert.equal(h['x-dreammesh-error'], 'MESH_ERR_DEADLINE_EXCEEDED');
    assert.ok((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0, 'Trailers-Only: the headers end the stream');
    assert.ok(Date.now() - started < 2000);
  } finally {
    s.close();
  }
});

test('an unknown service is UNIMPLEMENTED (12) from the sidecar, an unreachable one UNAVAILABLE (14), an HTTP/1.1-only one INTERNAL (13)', async () => {
  const c = echoClient(mesh.outbound, 'nosuch');
  try {
    const e = await unary(c, { text: 'x' }).then(
      () => null,
      (err: unknown) => grpcError(err),
    );
    assert.equal(e?.code, grpc.status.UNIMPLEMENTED);
    assert.equal(e?.meshError, 'MESH_ERR_NO_ROUTE');
    assert.match(e?.details ?? '', /no service named/);
  } finally {
    c.close();
  }
  const g = echoClient(mesh.outbound, 'gone');
  try {
    const e = await unary(g, { text: 'x' }).then(
      () => null,
      (err: unknown) => grpcError(err),
    );
    assert.equal(e?.code, grpc.status.UNAVAILABLE);
    assert.equal(e?.meshError, 'MESH_ERR_UPSTREAM_REFUSED');
  } finally {
    g.close();
  }
  const l = echoClient(mesh.outbound, 'legacy');
  try {
    const e = await unary(l, { text: 'x' }).then(
      () => null,
      (err: unknown) => grpcError(err),
    );
    assert.equal(e?.code, grpc.status.INTERNAL, 'an HTTP/1.1-only endpoint cannot carry gRPC');
    assert.equal(e?.meshError, 'MESH_ERR_UPSTREAM_PROTOCOL');
  } finally {
    l.close();
  }
  const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.ok(metricSum(m, 'dreammesh_grpc_calls_total', { service: 'gone', grpc_status: '14' }) >= 1);
});

async function waitFor(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
