// gRPC between two sidecars over mTLS, as real processes with certificates from `dreammesh ca`:
// a grpc-js client calls through A (explicit mode, grpc.default_authority = b); A opens HTTP/2
// over TLS 1.3 (ALPN h2) to B's strict inbound listener, which checks the caller and forwards
// each call to its grpc-js app over h2c. Unary, server streaming and bidi calls; a deadline;
// authz per method path; a wrong-service certificate on B; plaintext h2c to B refused in strict
// mode and served with mtls off.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2Connect } from 'node:http2';
import { request } from 'undici';
import { startMtlsMesh, type MtlsMesh } from '../helpers/mtls-mesh.js';
import { spawnSidecar } from '../helpers/sidecar.js';
import { metricValue } from '../helpers/http.js';
import { until } from '../helpers/until.js';
import { startGrpcServers, echoClient, unary, grpcError, grpc, type GrpcServers, type Msg, type EchoClientT } from '../helpers/grpc-mesh.js';

let app: GrpcServers;

before(async () => {
  app = await startGrpcServers(1);
});

after(async () => {
  await app?.stop();
});

async function metricsOf(adminUrl: string): Promise<string> {
  return (await request(`${adminUrl}/metrics`)).body.text();
}

function serverStream(c: EchoClientT, n: number): Promise<Msg[]> {
  return new Promise((resolve, reject) => {
    const got: Msg[] = [];
    const s = c.serverStream({ n }, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    s.on('data', (m: Msg) => got.push(m));
    s.on('error', reject);
    s.on('end', () => resolve(got));
  });
}

function bidi(c: EchoClientT, texts: string[]): Promise<Msg[]> {
  return new Promise((resolve, reject) => {
    const got: Msg[] = [];
    const s = c.bidi(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    s.on('data', (m: Msg) => got.push(m));
    s.on('error', reject);
    s.on('end', () => resolve(got));
    for (const t of texts) s.write({ text: t });
    s.end();
  });
}

/** Resolves with how a plaintext h2c connection to `address` ended: 'served' or 'refused'. */
function plaintextH2(address: string, authority: string): Promise<'served' | 'refused'> {
  return new Promise((resolve) => {
    const s = h2Connect(`http://${address}`);
    const done = (v: 'served' | 'refused'): void => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done('refused'), 5000);
    s.on('error', () => done('refused'));
    s.on('close', () => done('refused'));
    const r = s.request({ ':path': '/mesh.Echo/Unary', ':method': 'POST', ':authority': authority, 'content-type': 'application/grpc', te: 'trailers' });
    r.on('error', () => done('refused'));
    r.on('response', () => done('served'));
    r.end();
  });
}

test('unary, server streaming and bidi calls cross the mTLS hop; B sees caller a; plaintext h2c to strict B is refused', async () => {
  const m: MtlsMesh = await startMtlsMesh({ bApp: app.addresses[0]! });
  const client = echoClient(m.a.outbound, 'b');
  try {
    const before = app.calls[0]!;
    const r = await unary(client, { text: 'over mtls' });
    assert.deepEqual(r, { text: 'over mtls', server: 0 });
    const stream = await serverStream(client, 5);
    assert.deepEqual(
      stream.map((x) => x.n),
      [0, 1, 2, 3, 4],
    );
    const echoed = await bidi(client, ['x', 'y', 'z']);
    assert.deepEqual(
      echoed.map((x) => x.text),
      ['x', 'y', 'z'],
    );
    assert.equal(app.calls[0]! - before, 3, 'the app served the three calls');
    // The hop is TLS: B knows the caller from A's certificate (plaintext would be "unknown").
    const bm = await metricsOf(m.b.adminUrl);
    assert.equal(metricValue(bm, 'dreammesh_inbound_requests_total', { caller: 'a', code: '200' }), 3);
    assert.equal(metricValue(bm, 'dreammesh_grpc_calls_total', { mode: 'inbound', service: 'b', grpc_status: '0' }), 3);
    const am = await metricsOf(m.a.adminUrl);
    assert.equal(metricValue(am, 'dreammesh_grpc_calls_total', { mode: 'explicit', service: 'b', grpc_status: '0' }), 3);
    // One multiplexed TLS session carried all three calls.
    assert.equal(metricValue(am, 'dreammesh_upstream_connections_opened_total', { service: 'b' }), 1);
    // Strict B: plaintext HTTP/2 to its inbound listener is closed without an answer.
    assert.equal(await plaintextH2(m.b.inbound, 'b'), 'refused');
    assert.equal(app.calls[0]! - before, 3, 'the plaintext call never reached the app');
    const refused = metricValue(await metricsOf(m.b.adminUrl), 'dreammesh_mtls_inbound_refused_total', { reason: 'plaintext' });
    assert.ok(refused >= 1, `plaintext refusal counted (${refused})`);
  } finally {
    client.close();
    await m.close();
  }
});

test('a deadline passes on the far side of the hop: status 4, the app sees the call cancelled', async () => {
  const m = await startMtlsMesh({ bApp: app.addresses[0]! });
  const client = echoClient(m.a.outbound, 'b');
  try {
    const cancelled = app.cancelled[0]!;
    const started = Date.now();
    const err = await unary(client, { text: 'slow', delayMs: 3000 }, 300).then(
      () => assert.fail('the call should have missed its deadline'),
      (e: unknown) => grpcError(e),
    );
    assert.equal(err.code, 4, JSON.stringify(err));
    assert.ok(Date.now() - started < 2500, 'ended at the deadline, not when the app answered');
    await until('the app saw the call cancelled', () => app.cancelled[0]! > cancelled);
    assert.deepEqual(await unary(client, { text: 'after' }), { text: 'after', server: 0 });
  } finally {
    client.close();
    await m.close();
  }
});

test('authz.allow by method path: a denied call gets status 7 PERMISSION_DENIED and never reaches the app', async () => {
  const m = await startMtlsMesh({ bApp: app.addresses[0]!, authz: { allow: [{ from: ['a'], paths: ['/mesh.Echo/Unary'] }] } });
  const client = echoClient(m.a.outbound, 'b');
  try {
    assert.deepEqual(await unary(client, { text: 'allowed' }), { text: 'allowed', server: 0 });
    const before = app.calls[0]!;
    const err = await serverStream(client, 2).then(
      () => assert.fail('the call should have been denied'),
      (e: unknown) => e as grpc.ServiceError,
    );
    assert.equal(err.code, 7, err.message);
    assert.match(err.details, /authz\.allow: caller a may not POST \/mesh\.Echo\/ServerStream/);
    // B refused; A passes B's answer on with the code renamed (x-dreammesh-error is A's own).
    assert.equal(err.metadata.get('x-dreammesh-upstream-error')[0], 'MESH_ERR_FORBIDDEN');
    assert.equal(app.calls[0]!, before, 'the app never saw the denied call');
    const bm = await metricsOf(m.b.adminUrl);
    assert.equal(metricValue(bm, 'dreammesh_authz_denied_total', { caller: 'a' }), 1);
    assert.equal(metricValue(bm, 'dreammesh_grpc_calls_total', { mode: 'inbound', service: 'b', grpc_status: '7' }), 1);
  } finally {
    client.close();
    await m.close();
  }
});

test('a wrong-service certificate on B: status 14 with the identity error; not one call reaches B', async () => {
  const m = await startMtlsMesh({ bApp: app.addresses[0]!, bCertService: 'billing' });
  const client = echoClient(m.a.outbound, 'b');
  try {
    const before = app.calls[0]!;
    const err = await unary(client, { text: 'x' }).then(
      () => assert.fail('the call should have been refused'),
      (e: unknown) => grpcError(e),
    );
    assert.equal(err.code, 14, JSON.stringify(err));
    assert.equal(err.meshError, 'MESH_ERR_PEER_IDENTITY');
    assert.match(err.details, /expected spiffe:\/\/dreammesh\.local\/service\/b, presented spiffe:\/\/dreammesh\.local\/service\/billing/);
    assert.equal(app.calls[0]!, before);
    assert.equal(metricValue(await metricsOf(m.b.adminUrl), 'dreammesh_inbound_requests_total', { caller: 'a', code: '200' }), 0);
  } finally {
    client.close();
    await m.close();
  }
});

test('mtls off: a grpc-js client straight to the inbound listener (h2c, prior knowledge) reaches the app', async () => {
  const b = await spawnSidecar({ service: 'b', app: app.addresses[0]! });
  const client = echoClient(b.inbound, 'b');
  try {
    const before = app.calls[0]!;
    assert.deepEqual(await unary(client, { text: 'plain' }), { text: 'plain', server: 0 });
    assert.deepEqual(
      (await serverStream(client, 3)).map((x) => x.n),
      [0, 1, 2],
    );
    assert.equal(app.calls[0]! - before, 2);
    const bm = await metricsOf(b.adminUrl);
    assert.equal(metricValue(bm, 'dreammesh_inbound_requests_total', { caller: 'unknown', code: '200' }), 2);
  } finally {
    client.close();
    await b.stop();
  }
});

test('permissive B: plaintext h2c straight to its inbound is served (caller unknown), mTLS calls through A carry caller a', async () => {
  const m = await startMtlsMesh({ bApp: app.addresses[0]!, bMode: 'permissive' });
  const direct = echoClient(m.b.inbound, 'b');
  const viaA = echoClient(m.a.outbound, 'b');
  try {
    assert.deepEqual(await unary(direct, { text: 'plain' }), { text: 'plain', server: 0 });
    assert.deepEqual(await unary(viaA, { text: 'tls' }), { text: 'tls', server: 0 });
    const bm = await metricsOf(m.b.adminUrl);
    assert.equal(metricValue(bm, 'dreammesh_inbound_requests_total', { caller: 'unknown', code: '200' }), 1);
    assert.equal(metricValue(bm, 'dreammesh_inbound_requests_total', { caller: 'a', code: '200' }), 1);
  } finally {
    direct.close();
    viaA.close();
    await m.close();
  }
});
