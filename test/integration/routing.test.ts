// Route rules and load balancing as a user configures them in mesh.yaml.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { viaSidecar, getJson } from '../helpers/http.js';

let v1: TestUpstream;
let v2: TestUpstream;
let failing: TestUpstream;
let mesh: RunningSidecar;

before(async () => {
  v1 = await startUpstream('v1');
  v2 = await startUpstream('v2');
  failing = await startUpstream('failing', (_req, res) => {
    res.writeHead(500);
    res.end('boom');
  });
  const endpoints = [
    { address: v1.address, labels: { version: 'v1' } },
    { address: v2.address, labels: { version: 'v2' } },
  ];
  mesh = await startSidecar({
    outlier: { consecutiveFailures: 3, baseEjectionMs: 60000, maxEjectionPercent: 50 },
    services: {
      canary: {
        endpoints,
        routes: [
          {
            name: 'one-percent',
            split: [
              { labels: { version: 'v1' }, weight: 99 },
              { labels: { version: 'v2' }, weight: 1 },
            ],
          },
        ],
      },
      rules: {
        endpoints,
        routes: [
          { name: 'beta-users', match: { headers: { 'x-beta': 'yes' } }, split: [{ labels: { version: 'v2' }, weight: 1 }] },
          { name: 'api', match: { pathPrefix: '/api/' }, split: [{ labels: { version: 'v1' }, weight: 1 }] },
        ],
      },
      weighted: {
        lb: 'round-robin',
        endpoints: [
          { address: v1.address, weight: 3 },
          { address: v2.address, weight: 1 },
        ],
      },
      lr: { lb: 'least-request', endpoints: [v1.address, v2.address] },
      flaky: { endpoints: [failing.address, v1.address], lb: 'round-robin' },
    },
  });
});
after(async () => {
  await mesh.stop();
  await Promise.all([v1.close(), v2.close(), failing.close()]);
});

const nameOf = async (host: string, path = '/', headers: Record<string, string> = {}): Promise<string> => (await viaSidecar(mesh.outbound, host, path, { headers })).json<{ name: string }>().name;

test('a 1% canary split sends about 1% of requests to v2', async () => {
  let v2count = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) if ((await nameOf('canary')) === 'v2') v2count += 1;
  // Binomial(2000, 0.01): mean 20, sd ~4.5; the bounds are ~4 sd wide.
  assert.ok(v2count >= 3 && v2count <= 45, `v2 got ${v2count} of ${n}`);
});

test('header match and path prefix pick their routes; first match wins', async () => {
  for (let i = 0; i < 5; i++) {
    assert.equal(await nameOf('rules', '/api/x', { 'x-beta': 'yes' }), 'v2');
    assert.equal(await nameOf('rules', '/api/x'), 'v1');
  }
});

test('no matching route rule is a 404 MESH_ERR_NO_ROUTE_MATCH naming the routes', async () => {
  const r = await viaSidecar(mesh.outbound, 'rules', '/other');
  assert.equal(r.status, 404);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_NO_ROUTE_MATCH');
  assert.deepEqual(r.json<{ routes: string[] }>().routes, ['beta-users', 'api']);
});

test('weighted round-robin honours 3:1 weights exactly over a cycle', async () => {
  const names: string[] = [];
  for (let i = 0; i < 40; i++) names.push(await nameOf('weighted'));
  assert.equal(names.filter((n) => n === 'v1').length, 30);
});

test('least-request prefers the endpoint with fewer requests in flight', async () => {
  const slowOne = await startUpstream('slow', (_req, res) => setTimeout(() => res.end('{"name":"slow"}'), 3000));
  const fast = await startUpstream('fast');
  const m = await startSidecar({ services: { s: { lb: 'least-request', endpoints: [slowOne.address, fast.address] } } });
  try {
    const inflight = Array.from({ length: 4 }, () => viaSidecar(m.outbound, 's'));
    await new Promise((r) => setTimeout(r, 100));
    const later: string[] = [];
    for (let i = 0; i < 10; i++) later.push((await viaSidecar(m.outbound, 's')).json<{ name: string }>().name);
    await Promise.all(inflight);
    assert.ok(later.filter((n) => n === 'fast').length >= 9, later.join(','));
  } finally {
    await m.stop();
    await slowOne.close();
    await fast.close();
  }
});

test('an endpoint answering 5xx repeatedly is ejected and traffic moves to the healthy one', async () => {
  for (let i = 0; i < 10; i++) await viaSidecar(mesh.outbound, 'flaky');
  const c = await getJson(`${mesh.adminUrl}/clusters`);
  const flaky = (c.body.clusters as { service: string; endpoints: { address: string; healthy: boolean }[] }[]).find((x) => x.service === 'flaky')!;
  assert.equal(flaky.endpoints.find((e) => e.address === failing.address)!.healthy, false);
  for (let i = 0; i < 10; i++) assert.equal(await nameOf('flaky'), 'v1');
  const text = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.match(text, /dreammesh_endpoint_ejections_total\{service="flaky"\} 1/);
});
