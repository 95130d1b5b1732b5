// Peers that must not be trusted are refused with clear codes, and nothing reaches the app:
// a certificate for another service, one from another CA, an expired one. After each, both
// sidecars are still alive and serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { startMtlsMesh, curl, caInit, issue } from '../helpers/mtls-mesh.js';
import { viaSidecar, metricValue, getJson } from '../helpers/http.js';
import { startUpstream } from '../helpers/upstream.js';
import { spawnSidecar } from '../helpers/sidecar.js';
import { until } from '../helpers/until.js';

async function metrics(adminUrl: string): Promise<string> {
  return (await request(`${adminUrl}/metrics`)).body.text();
}

test('an endpoint of b presenting the certificate of service c: 502 MESH_ERR_PEER_IDENTITY naming expected and presented', async () => {
  const m = await startMtlsMesh({ bCertService: 'c' });
  try {
    const r = await viaSidecar(m.a.outbound, 'b', '/x');
    assert.equal(r.status, 502, r.text);
    assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_PEER_IDENTITY');
    assert.match(r.text, /expected spiffe:\/\/dreammesh\.local\/service\/b, presented spiffe:\/\/dreammesh\.local\/service\/c/);
    assert.equal(m.app.seen.length, 0);
    // Alive: B still serves a client that expects "c" (s_client-like check through curl is plaintext-refused; use admin).
    assert.equal((await getJson(`${m.b.adminUrl}/live`)).status, 200);
    assert.equal((await getJson(`${m.a.adminUrl}/live`)).status, 200);
  } finally {
    await m.close();
  }
});

test('A with a certificate from another CA: B refuses the handshake; A answers 502 MESH_ERR_TLS_HANDSHAKE', async () => {
  const m = await startMtlsMesh({ aFromOtherCa: true });
  try {
    const r = await viaSidecar(m.a.outbound, 'b', '/x');
    assert.equal(r.status, 502, r.text);
    assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_TLS_HANDSHAKE');
    assert.equal(m.app.seen.length, 0);
    // curl with that certificate is refused by B too.
    const c = await curl('--cert', join(m.aCerts, 'cert.pem'), '--key', join(m.aCerts, 'key.pem'), '-k', `https://${m.b.inbound}/`);
    assert.notEqual(c.code, 0, c.out);
    assert.equal(m.app.seen.length, 0);
    assert.ok(metricValue(await metrics(m.b.adminUrl), 'dreammesh_mtls_inbound_refused_total', { reason: 'untrusted' }) >= 2);
    assert.equal((await getJson(`${m.b.adminUrl}/live`)).status, 200);
  } finally {
    await m.close();
  }
});

test('B with an expired certificate: A refuses it (502 MESH_ERR_PEER_UNTRUSTED, CERT_HAS_EXPIRED) and B is not ready', async () => {
  // Long enough for B to start (a sidecar refuses to start with an expired certificate).
  const m = await startMtlsMesh({ bTtl: '4s' });
  try {
    await until("B's certificate expired", async () => Number((await getJson(`${m.b.adminUrl}/certs`)).body.secondsToExpiry) < 0, 10_000);
    const r = await viaSidecar(m.a.outbound, 'b', '/x');
    assert.equal(r.status, 502, r.text);
    assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_PEER_UNTRUSTED');
    assert.match(r.text, /CERT_HAS_EXPIRED/);
    assert.equal(m.app.seen.length, 0);
    const ready = await getJson(`${m.b.adminUrl}/ready`);
    assert.equal(ready.status, 503);
    assert.ok(Number((await getJson(`${m.b.adminUrl}/certs`)).body.secondsToExpiry) <= 0);
    assert.equal((await getJson(`${m.a.adminUrl}/ready`)).status, 200);
  } finally {
    await m.close();
  }
});

test('an expired client certificate is refused by the inbound listener', async () => {
  const m = await startMtlsMesh();
  try {
    const old = join(m.dir, 'old');
    await issue(m.caDir, 'a', old, '1s');
    await new Promise((r) => setTimeout(r, 1500));
    const c = await curl('--cert', join(old, 'cert.pem'), '--key', join(old, 'key.pem'), '--cacert', join(old, 'ca.pem'), '-k', `https://${m.b.inbound}/`);
    assert.notEqual(c.code, 0, c.out);
    assert.equal(m.app.seen.length, 0);
    assert.ok(metricValue(await metrics(m.b.adminUrl), 'dreammesh_mtls_inbound_refused_total', { reason: 'expired' }) >= 1);
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/still')).status, 200);
  } finally {
    await m.close();
  }
});

test('permissive: plaintext curl is served without a caller, mTLS callers are named; the access log says which', async () => {
  const dir = (await import('node:fs/promises')).mkdtemp;
  const tmp = await dir(join((await import('node:os')).tmpdir(), 'dm-mtls-log-'));
  const log = join(tmp, 'access.log');
  const m = await startMtlsMesh({ bMode: 'permissive', bExtra: { accessLog: { enabled: true, path: log } } });
  try {
    const plain = await curl('-H', 'x-dreammesh-caller: a', `http://${m.b.inbound}/plain`);
    assert.equal(plain.code, 0, plain.out);
    assert.match(plain.out, /b-app/);
    assert.equal(m.app.seen[0]?.headers['x-dreammesh-caller'], undefined, 'a forged caller never reaches the app');
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/tls')).status, 200);
    assert.equal(m.app.seen[1]?.headers['x-dreammesh-caller'], 'a');
    const text = await metrics(m.b.adminUrl);
    assert.equal(metricValue(text, 'dreammesh_inbound_requests_total', { caller: 'unknown', code: '200' }), 1);
    assert.equal(metricValue(text, 'dreammesh_inbound_requests_total', { caller: 'a', code: '200' }), 1);
    const { readFile } = await import('node:fs/promises');
    let lines: { caller?: string; path?: string }[] = [];
    for (let i = 0; i < 50 && lines.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      lines = (await readFile(log, 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l.includes('"access"'))
        .map((l) => JSON.parse(l) as { caller?: string; path?: string });
    }
    assert.deepEqual(
      lines.map((l) => [l.path, l.caller]),
      [
        ['/plain', 'unknown'],
        ['/tls', 'a'],
      ],
    );
  } finally {
    await m.close();
  }
});

test('a sidecar does not start with a bad identity: key of another certificate, or no files in strict mode', async () => {
  const tmp = await (await import('node:fs/promises')).mkdtemp(join((await import('node:os')).tmpdir(), 'dm-mtls-bad-'));
  await caInit(join(tmp, 'ca'));
  const x = await issue(join(tmp, 'ca'), 'x', join(tmp, 'x'));
  const y = await issue(join(tmp, 'ca'), 'y', join(tmp, 'y'));
  const app = await startUpstream('app');
  try {
    await assert.rejects(spawnSidecar({ service: 'x', app: app.address, mtls: { mode: 'strict', certFile: x.cert, keyFile: y.key, caFile: x.ca } }), /MESH_ERR_IDENTITY_INVALID.*does not match/);
    await assert.rejects(spawnSidecar({ service: 'x', app: app.address, mtls: { mode: 'strict' } }), /MESH_ERR_IDENTITY_INVALID|certFile/);
  } finally {
    await app.close();
  }
});
