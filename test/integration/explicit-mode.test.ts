// Explicit mode end to end over real sockets: name a service in Host, reach an endpoint.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, deadPort, type TestUpstream } from '../helpers/upstream.js';
import { viaSidecar, getJson, metricValue } from '../helpers/http.js';

const exec = promisify(execFile);
let v1: TestUpstream;
let v2: TestUpstream;
let mesh: RunningSidecar;

before(async () => {
  v1 = await startUpstream('users-v1');
  v2 = await startUpstream('users-v2');
  mesh = await startSidecar({
    lb: 'round-robin',
    services: {
      users: {
        endpoints: [
          { address: v1.address, labels: { version: 'v1' } },
          { address: v2.address, labels: { version: 'v2' } },
        ],
      },
      orders: { endpoints: [v1.address] },
    },
  });
});
after(async () => {
  await mesh.stop();
  await v1.close();
  await v2.close();
});

test('curl with Host: users reaches an endpoint of users', async () => {
  const { stdout } = await exec('curl', ['-s', '-H', 'Host: users', `http://${mesh.outbound}/hello?x=1`]);
  const body = JSON.parse(stdout) as { name: string; url: string };
  assert.match(body.name, /^users-v[12]$/);
  assert.equal(body.url, '/hello?x=1');
});

test('Host with port, domain suffix and Kubernetes-style names resolve to the same service', async () => {
  for (const host of ['users:80', 'users.mesh', 'users.mesh:8080', 'USERS', 'users.default.svc.cluster.local']) {
    const r = await viaSidecar(mesh.outbound, host, '/');
    assert.equal(r.status, 200, host);
    assert.match(r.json<{ name: string }>().name, /^users-v[12]$/, host);
  }
});

test('round-robin alternates between the endpoints', async () => {
  const names: string[] = [];
  for (let i = 0; i < 10; i++) names.push((await viaSidecar(mesh.outbound, 'users')).json<{ name: string }>().name);
  assert.equal(names.filter((n) => n === 'users-v1').length, 5);
  assert.equal(names.filter((n) => n === 'users-v2').length, 5);
});

test('the upstream sees x-forwarded-for, via, a traceparent and an x-request-id', async () => {
  const r = await viaSidecar(mesh.outbound, 'users', '/h', { headers: { 'x-request-id': 'abc-123', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
  const h = r.json<{ headers: Record<string, string> }>().headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.match(h.via!, /^1\.1 dreammesh-[0-9a-f]{8}$/);
  assert.equal(h['x-request-id'], 'abc-123');
  assert.match(h.traceparent!, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
  assert.notEqual(h.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.match(String(r.headers.via), /dreammesh-/);
  const fresh = (await viaSidecar(mesh.outbound, 'users')).json<{ headers: Record<string, string> }>().headers;
  assert.match(fresh.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.match(fresh['x-request-id']!, /^[0-9a-f-]{36}$/);
});

test('hop-by-hop headers, including ones named in Connection, are not forwarded', async () => {
  const { stdout } = await exec('curl', [
    '-s',
    '-H',
    'Host: users',
    '-H',
    'Connection: keep-alive, x-secret-hop',
    '-H',
    'x-secret-hop: 1',
    '-H',
    'Keep-Alive: timeout=5',
    '-H',
    'x-end-to-end: yes',
    `http://${mesh.outbound}/`,
  ]);
  const h = (JSON.parse(stdout) as { headers: Record<string, string> }).headers;
  assert.equal(h['x-secret-hop'], undefined);
  assert.equal(h['keep-alive'], undefined);
  assert.equal(h['x-end-to-end'], 'yes');
});

test('an unknown service is a 404 that lists the known services', async () => {
  const r = await viaSidecar(mesh.outbound, 'nosuch', '/');
  assert.equal(r.status, 404);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_NO_ROUTE');
  const body = r.json<{ known: string[]; message: string }>();
  assert.deepEqual(body.known, ['orders', 'users']);
  assert.match(body.message, /nosuch/);
});

test('a malformed Host is a 400 MESH_ERR_BAD_HOST', async () => {
  const r = await viaSidecar(mesh.outbound, 'bad host!', '/');
  assert.equal(r.status, 400);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_BAD_HOST');
});

test('a Host naming the sidecar itself is refused as a loop (508)', async () => {
  const r = await viaSidecar(mesh.outbound, mesh.outbound, '/');
  assert.equal(r.status, 508);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_LOOP');
  const port = mesh.outbound.split(':')[1]!;
  assert.equal((await viaSidecar(mesh.outbound, `localhost:${port}`, '/')).status, 508);
});

test('request and response bodies stream through unchanged (5 MB each way)', async () => {
  const big = 'x'.repeat(5 * 1024 * 1024);
  const r = await viaSidecar(mesh.outbound, 'users', '/upload', { method: 'POST', body: big, headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200);
  assert.equal(r.json<{ bodyBytes: number }>().bodyBytes, big.length);
});

test('metrics count explicit requests by service and code, with a duration histogram', async () => {
  await viaSidecar(mesh.outbound, 'orders', '/');
  const text = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.ok(metricValue(text, 'dreammesh_requests_total', { mode: 'explicit', service: 'orders', code: '200' }) >= 1);
  assert.ok(metricValue(text, 'dreammesh_requests_total', { mode: 'explicit', service: '-', code: '404' }) >= 1);
  assert.ok(metricValue(text, 'dreammesh_request_duration_seconds_count', { mode: 'explicit', service: 'orders' }) >= 1);
  assert.match(text, /dreammesh_upstream_connections\{service="(users|orders)"\} [1-9]/);
});

test('/clusters shows endpoints with labels and health; /config shows the effective config', async () => {
  const c = await getJson(`${mesh.adminUrl}/clusters`);
  const users = (c.body.clusters as { service: string; endpoints: { address: string; healthy: boolean; labels: Record<string, string> }[] }[]).find((x) => x.service === 'users');
  assert.ok(users);
  assert.equal(users.endpoints.length, 2);
  assert.ok(users.endpoints.every((e) => e.healthy));
  assert.deepEqual(users.endpoints.map((e) => e.labels.version).sort(), ['v1', 'v2']);
  const cfg = await getJson(`${mesh.adminUrl}/config`);
  assert.equal(cfg.body.version, 1);
  assert.ok(!Number.isNaN(Date.parse(cfg.body.loadedAt as string)));
  assert.equal((cfg.body.config as { timeouts: { connectMs: number } }).timeouts.connectMs, 1000);
});

test('a dead endpoint is skipped by retrying idempotent requests on another endpoint', async () => {
  const dead = await deadPort();
  const m = await startSidecar({ lb: 'round-robin', services: { s: { endpoints: [`127.0.0.1:${dead}`, v1.address] } } });
  try {
    for (let i = 0; i < 6; i++) {
      const r = await viaSidecar(m.outbound, 's');
      assert.equal(r.status, 200);
    }
    const text = await (await fetch(`${m.adminUrl}/metrics`)).text();
    assert.ok(metricValue(text, 'dreammesh_retries_total', { service: 's', outcome: 'attempted' }) >= 1);
  } finally {
    await m.stop();
  }
});

test('every endpoint refusing is a 503 MESH_ERR_UPSTREAM_REFUSED; a POST is not retried', async () => {
  const dead = await deadPort();
  const m = await startSidecar({ services: { s: { endpoints: [`127.0.0.1:${dead}`] } } });
  try {
    const r = await viaSidecar(m.outbound, 's');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_UPSTREAM_REFUSED');
    const p = await viaSidecar(m.outbound, 's', '/', { method: 'POST', body: 'x' });
    assert.equal(p.status, 503);
  } finally {
    await m.stop();
  }
});
