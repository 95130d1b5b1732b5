// The README's "1% canary", taken from the README itself, through a real sidecar: 10,000
// keep-alive requests, 16 at a time, and about 100 of them must reach v2.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { Pool, request } from 'undici';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const REQUESTS = 10_000;
const CONCURRENCY = 16;
const DEADLINE_MS = 90_000;

type Endpoint = string | { address: string; weight?: number; labels?: Record<string, string> };
interface ServiceYaml {
  endpoints: Endpoint[];
  routes: unknown[];
}

let v1: TestUpstream;
let v2: TestUpstream;
let mesh: RunningSidecar;

/** The README's `users` service, with its two endpoint addresses pointed at our upstreams. */
async function readmeUsersService(): Promise<ServiceYaml> {
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  const block = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as { services?: { users?: ServiceYaml } }).find((c) => c.services?.users?.routes);
  assert.ok(block, 'README.md has a yaml block with services.users.routes');
  const users = block.services!.users!;
  assert.equal(users.endpoints.length, 2, 'the README example has two endpoints: v1 and the v2 canary');
  const to = [v1.address, v2.address];
  users.endpoints = users.endpoints.map((e, i) => (typeof e === 'string' ? to[i]! : { ...e, address: to[i]! }));
  return users;
}

before(async () => {
  const body = Buffer.from('ok');
  const tiny = (name: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'content-length': body.length, 'x-upstream': name });
    res.end(body);
  };
  v1 = await startUpstream('v1', tiny('v1'));
  v2 = await startUpstream('v2', tiny('v2'));
  const noV3 = { endpoints: [v1.address], routes: [{ split: [{ labels: { version: 'v3' }, weight: 1 }] }] };
  mesh = await startSidecar({ services: { users: await readmeUsersService(), 'no-v3': noV3 } });
});
after(async () => {
  await mesh.stop();
  await Promise.all([v1.close(), v2.close()]);
});

test('the README 1% canary sends 100 ± 40 of 10,000 requests to v2', async () => {
  const pool = new Pool(`http://${mesh.outbound}`, { connections: CONCURRENCY, pipelining: 1 });
  const deadline = Date.now() + DEADLINE_MS;
  let started = 0;
  const byUpstream = new Map<string, number>();
  const worker = async (): Promise<void> => {
    while (started < REQUESTS && Date.now() < deadline) {
      started += 1;
      const r = await pool.request({ path: '/', method: 'GET', headers: { host: 'users' } });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
      const name = String(r.headers['x-upstream']);
      byUpstream.set(name, (byUpstream.get(name) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    await pool.close();
  }
  const total = (byUpstream.get('v1') ?? 0) + (byUpstream.get('v2') ?? 0);
  assert.equal(total, REQUESTS, `only ${total} requests finished within ${DEADLINE_MS} ms`);
  const toV2 = byUpstream.get('v2') ?? 0;
  // Binomial(10,000, 0.01): mean 100, sd ~10; ±40 is four standard deviations.
  assert.ok(toV2 >= 60 && toV2 <= 140, `v2 got ${toV2} of ${REQUESTS} (expected about 100)`);
});

test('a split entry that selects no endpoint answers 503 MESH_ERR_NO_HEALTHY_ENDPOINT', async () => {
  const before = v1.seen.length;
  const r = await request(`http://${mesh.outbound}/`, { headers: { host: 'no-v3' } });
  await r.body.dump();
  assert.equal(r.statusCode, 503);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_NO_HEALTHY_ENDPOINT');
  assert.equal(v1.seen.length, before, 'the only endpoint, outside the split, got nothing');
});
