// Explicit requests from sidecar A reach B's app over mTLS; the app learns the caller from B.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'undici';
import { startMtlsMesh } from '../helpers/mtls-mesh.js';
import { viaSidecar, metricValue, getJson } from '../helpers/http.js';

test('explicit request from A reaches B over mTLS; the app sees x-dreammesh-caller: a, never a forged one', async () => {
  const m = await startMtlsMesh();
  try {
    for (let i = 0; i < 3; i++) {
      const r = await viaSidecar(m.a.outbound, 'b', `/hello/${i}`, { headers: { 'x-dreammesh-caller': 'admin' } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json<{ name: string }>().name, 'b-app');
    }
    assert.equal(m.app.seen.length, 3);
    for (const s of m.app.seen) assert.equal(s.headers['x-dreammesh-caller'], 'a');
    const metrics = await (await request(`${m.b.adminUrl}/metrics`)).body.text();
    assert.equal(metricValue(metrics, 'dreammesh_inbound_requests_total', { caller: 'a', code: '200' }), 3);
    // Pooled: three requests, one TLS connection from A to B.
    const aMetrics = await (await request(`${m.a.adminUrl}/metrics`)).body.text();
    assert.equal(metricValue(aMetrics, 'dreammesh_upstream_connections_opened_total', { service: 'b' }), 1);
    const certs = await getJson(`${m.b.adminUrl}/certs`);
    assert.equal(certs.body.spiffeId, 'spiffe://dreammesh.local/service/b');
    assert.match(String(certs.body.caSubjects), /DreamMesh CA dreammesh.local/);
    assert.ok(Number(certs.body.secondsToExpiry) > 80_000);
    assert.match(metrics, /dreammesh_mtls_cert_expiry_seconds \d{5}/);
    const clusters = (await getJson(`${m.a.adminUrl}/clusters`)).body.clusters as { service: string; endpoints: { mtls: boolean }[] }[];
    assert.equal(clusters.find((c) => c.service === 'b')?.endpoints[0]?.mtls, true);
    const ready = await getJson(`${m.b.adminUrl}/ready`);
    assert.equal(ready.status, 200);
  } finally {
    await m.close();
  }
});

test('openssl s_client to B shows its SPIFFE URI; plain curl is refused in strict mode', async () => {
  const m = await startMtlsMesh();
  try {
    const out = await new Promise<string>((resolve) => {
      const p = execFile(
        'openssl',
        ['s_client', '-connect', m.b.inbound, '-cert', `${m.aCerts}/cert.pem`, '-key', `${m.aCerts}/key.pem`, '-CAfile', `${m.aCerts}/ca.pem`, '-alpn', 'http/1.1', '-showcerts'],
        { timeout: 10_000 },
        (_e, stdout, stderr) => resolve(stdout + stderr),
      );
      p.stdin?.end('GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
    });
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
    assert.ok(pem, out);
    const { X509Certificate } = await import('node:crypto');
    assert.match(new X509Certificate(pem).subjectAltName ?? '', /URI:spiffe:\/\/dreammesh.local\/service\/b/);
    assert.match(out, /Verify return code: 0/);
    assert.match(out, /TLSv1\.3/);
    const curl = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile('curl', ['-sS', '-m', '5', `http://${m.b.inbound}/`], (e, stdout, stderr) => resolve({ code: e === null ? 0 : ((e as { code?: number }).code ?? -1), out: stdout + stderr }));
    });
    assert.notEqual(curl.code, 0, 'plaintext is refused');
    const curlTls = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile('curl', ['-sS', '-m', '5', '--cacert', `${m.aCerts}/ca.pem`, '-k', `https://${m.b.inbound}/`], (e, stdout, stderr) =>
        resolve({ code: e === null ? 0 : ((e as { code?: number }).code ?? -1), out: stdout + stderr }),
      );
    });
    assert.notEqual(curlTls.code, 0, `TLS without a client certificate is refused: ${curlTls.out}`);
    assert.equal(m.app.seen.length, 1, 'only the s_client request reached the app');
    const metrics = await (await request(`${m.b.adminUrl}/metrics`)).body.text();
    assert.equal(metricValue(metrics, 'dreammesh_mtls_inbound_refused_total', { reason: 'plaintext' }), 1);
    assert.ok(
      metricValue(metrics, 'dreammesh_mtls_inbound_refused_total', { reason: 'no-client-cert' }) >= 1,
      metrics
        .split('\n')
        .filter((l) => l.includes('refused'))
        .join('\n'),
    );
    // Still alive and serving.
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/after')).status, 200);
  } finally {
    await m.close();
  }
});

test('a WebSocket upgrade crosses the mTLS hop: 101 relayed, messages echo both ways', async () => {
  const { WebSocket, WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (sock, req) => {
    sock.send(`caller ${String(req.headers['x-dreammesh-caller'])}`);
    sock.on('message', (data, binary) => sock.send(data, { binary }));
  });
  const port = (wss.address() as { port: number }).port;
  const m = await startMtlsMesh({ bExtra: { app: `127.0.0.1:${port}` } });
  try {
    const ws = new WebSocket(`ws://${m.a.outbound}/ws`, { headers: { host: 'b' }, handshakeTimeout: 5000 });
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (d: Buffer) => {
        got.push(d.toString());
        if (got.length === 1) ws.send('hello over mtls');
        if (got.length === 2) ws.send(Buffer.alloc(200_000, 7));
        if (got.length === 3) resolve();
      });
      ws.on('error', reject);
    });
    assert.equal(got[0], 'caller a');
    assert.equal(got[1], 'hello over mtls');
    assert.equal(got[2]!.length, 200_000);
    ws.close();
  } finally {
    await m.close();
    wss.close();
  }
});
