// Inbound delivery, admin readiness, Unix-socket listeners and graceful shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startSidecar, spawnSidecar } from '../helpers/sidecar.js';
import { startUpstream, deadPort } from '../helpers/upstream.js';
import { getJson, metricValue } from '../helpers/http.js';

test('inbound forwards to the app; a claimed caller counts as unknown and never reaches the app', async () => {
  const app = await startUpstream('app');
  const mesh = await startSidecar({ app: app.address, services: { billing: { endpoints: ['127.0.0.1:9'] } } });
  try {
    const r = await request(`http://${mesh.inbound}/in`, { headers: { 'x-dreammesh-caller': 'billing', 'x-dreammesh-anything': 'x' } });
    assert.equal(r.statusCode, 200);
    assert.equal(((await r.body.json()) as { name: string }).name, 'app');
    await (await request(`http://${mesh.inbound}/in`)).body.text();
    assert.ok(
      app.seen.every((s) => !Object.keys(s.headers).some((h) => h.startsWith('x-dreammesh-'))),
      'no x-dreammesh-* header reached the app',
    );
    const text = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
    assert.equal(metricValue(text, 'dreammesh_inbound_requests_total', { caller: 'billing', code: '200' }), 0);
    assert.equal(metricValue(text, 'dreammesh_inbound_requests_total', { caller: 'unknown', code: '200' }), 2);
    await app.close();
    const down = await request(`http://${mesh.inbound}/in`);
    assert.equal(down.statusCode, 503);
    assert.equal(down.headers['x-dreammesh-error'], 'MESH_ERR_APP_UNAVAILABLE');
    await down.body.text();
  } finally {
    await mesh.stop();
  }
});

test('every listener can be a Unix socket, and a stale socket file is replaced', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-unix-'));
  const out = join(dir, 'outbound.sock');
  // A socket file left behind by a process that is gone.
  const stale = createServer();
  await new Promise<void>((r) => stale.listen(out, r));
  await new Promise<void>((r) => {
    // Node unlinks on close; re-create a dead socket file by binding and exiting a child instead.
    stale.close(() => r());
  });
  const { spawnSync } = await import('node:child_process');
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(out)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  const up = await startUpstream('users');
  const mesh = await startSidecar({
    app: '127.0.0.1:9',
    listeners: { outbound: `unix:${out}`, inbound: `unix:${join(dir, 'inbound.sock')}`, admin: `unix:${join(dir, 'admin.sock')}` },
    services: { users: { endpoints: [up.address] } },
  });
  try {
    const r = await request('http://users/x', { dispatcher: new (await import('undici')).Agent({ connect: { socketPath: out } }) });
    assert.equal(r.statusCode, 200);
    assert.equal(((await r.body.json()) as { name: string }).name, 'users');
    // A second sidecar on the same live socket is refused, not silently stolen.
    await assert.rejects(startSidecar({ listeners: { outbound: `unix:${out}` } }), /another process is listening/);
    // A regular file in the way is never deleted.
    const file = join(dir, 'not-a-socket');
    await writeFile(file, 'data');
    await assert.rejects(startSidecar({ listeners: { outbound: `unix:${file}` } }), /not a socket/);
  } finally {
    await mesh.stop();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGTERM drains: /ready turns 503, the in-flight request completes, exit code 0', async () => {
  let arrived!: () => void;
  const reached = new Promise<void>((r) => (arrived = r));
  const slow = await startUpstream('slow', (_req, res) => {
    arrived();
    setTimeout(() => res.end('finished'), 800);
  });
  const mesh = await spawnSidecar({ services: { slow: { endpoints: [slow.address] } }, drainTimeoutMs: 5000 });
  try {
    assert.equal((await getJson(`${mesh.adminUrl}/ready`)).status, 200);
    const inflight = request(`http://${mesh.outbound}/`, { headers: { host: 'slow' } });
    await reached; // the request is in flight upstream (a fixed sleep is too short on a loaded machine)
    mesh.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const ready = await getJson(`${mesh.adminUrl}/ready`).catch(() => ({ status: 0, body: {} }));
    assert.ok(ready.status === 503 || ready.status === 0, `ready answered ${ready.status}`);
    const res = await inflight;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'finished');
    const code = await mesh.stop();
    assert.equal(code, 0, mesh.stderr());
  } finally {
    await mesh.stop();
    await slow.close();
  }
});

test('a port already taken is a clear start error naming the listener', async () => {
  const port = await deadPort();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
  try {
    await assert.rejects(startSidecar({ listeners: { outbound: `127.0.0.1:${port}` } }), /listeners\.outbound: cannot listen on .*EADDRINUSE/);
  } finally {
    blocker.close();
  }
});

test('the access log writes one JSON line per request; sampling keeps errors', async () => {
  const up = await startUpstream('users');
  const mesh = await spawnSidecar({ services: { users: { endpoints: [up.address] } }, accessLog: { enabled: true, sample: 0 } });
  try {
    await (await request(`http://${mesh.outbound}/ok`, { headers: { host: 'users' } })).body.text();
    await (await request(`http://${mesh.outbound}/missing`, { headers: { host: 'nosuch' } })).body.text();
  } finally {
    await mesh.stop();
    await up.close();
  }
  const lines = mesh
    .stdout()
    .split('\n')
    .filter((l) => l.includes('"type":"access"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  // sample: 0 drops successful requests but never errors.
  assert.equal(lines.length, 1, mesh.stdout());
  assert.equal(lines[0]!.status, 404);
  assert.equal(lines[0]!.error, 'MESH_ERR_NO_ROUTE');
  assert.equal(lines[0]!.mode, 'explicit');
  assert.equal(typeof lines[0]!.durationMs, 'number');
});
