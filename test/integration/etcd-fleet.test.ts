// Fleet registry on a real etcd: sidecars register their own instance under a lease, see each
// other and route to each other's inbound; a crashed sidecar vanishes with its lease; a bad
// record written by someone else is ignored and counted; start with etcd down uses the cache.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar, spawnSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, deadPort } from '../helpers/upstream.js';
import { viaSidecar, metricValue, getJson } from '../helpers/http.js';
import { startEtcd, etcdTestConfig, type EtcdServer } from '../helpers/etcd-server.js';
import { until } from '../helpers/until.js';

let etcd: EtcdServer;
let dir: string;
before(async () => {
  etcd = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), 'dm-etcd-fleet-'));
});
after(async () => {
  await etcd.stop();
  await rm(dir, { recursive: true, force: true });
});

const etcdConfig = (prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> => etcdTestConfig(etcd, dir, prefix, extra);

async function keys(prefix: string): Promise<string[]> {
  return (await etcd.ctl('get', '--prefix', '--keys-only', prefix)).split('\n').filter((l) => l.length > 0);
}

const upstreamOf = async (mesh: RunningSidecar, host: string): Promise<string | number> => {
  const r = await viaSidecar(mesh.outbound, host);
  return r.status === 200 ? String(r.headers['x-upstream']) : r.status;
};

test('two sidecars register, see each other and route to each other; instances come and go live', async (t) => {
  const prefix = '/fleet-a/';
  const a = await startUpstream('a');
  t.after(() => a.close());
  const b = await startUpstream('b');
  t.after(() => b.close());
  const c = await startUpstream('c');
  t.after(() => c.close());
  const meshA = await startSidecar({ service: 'alpha', app: a.address, instance: { labels: { version: 'v1', zone: 'z1' } }, registry: { etcd: etcdConfig(prefix) } });
  t.after(() => meshA.stop());
  const meshB = await startSidecar({ service: 'beta', app: b.address, registry: { etcd: etcdConfig(prefix) } });
  t.after(() => meshB.stop());
  let meshC: RunningSidecar | undefined;
  try {
    assert.deepEqual(await keys(prefix), [`${prefix}services/alpha/${meshA.inbound}`, `${prefix}services/beta/${meshB.inbound}`]);
    const rec = JSON.parse((await etcd.ctl('get', '--print-value-only', `${prefix}services/alpha/${meshA.inbound}`)).trim()) as Record<string, unknown>;
    assert.deepEqual(rec, { address: meshA.inbound, weight: 1, labels: { version: 'v1', zone: 'z1' } });

    await until('A to see beta', async () => (await upstreamOf(meshA, 'beta')) === 'b');
    await until('B to see alpha', async () => (await upstreamOf(meshB, 'alpha')) === 'a');
    const r = await viaSidecar(meshA.outbound, 'beta.mesh', '/hello');
    assert.equal(r.status, 200);
    assert.equal(r.json<{ url: string }>().url, '/hello', 'went A outbound → B inbound → b');

    // A third instance of beta joins: A uses it within ~1 s, no restart.
    meshC = await startSidecar({ service: 'beta', app: c.address, registry: { etcd: etcdConfig(prefix) } });
    t.after(() => meshC?.stop());
    const joinMs = await until('A to route to the new beta instance', async () => {
      const seen = new Set<string | number>();
      for (let i = 0; i < 6; i++) seen.add(await upstreamOf(meshA, 'beta'));
      return seen.has('c') && seen.has('b');
    });
    assert.ok(joinMs < 2500, `join seen in ${joinMs} ms`);

    // C leaves gracefully while A keeps sending: nothing fails, and A stops using C.
    const failures: (string | number)[] = [];
    let running = true;
    const traffic = (async () => {
      for (let i = 0; i < 2000 && running; i++) {
        const u = await upstreamOf(meshA, 'beta');
        if (u !== 'b' && u !== 'c') failures.push(u);
      }
    })();
    await meshC.stop();
    meshC = undefined;
    const leaveMs = await until('A to drop C', async () => {
      for (let i = 0; i < 4; i++) if ((await upstreamOf(meshA, 'beta')) !== 'b') return false;
      return true;
    });
    running = false;
    await traffic;
    assert.deepEqual(failures, [], 'no request failed while an instance left');
    assert.ok(leaveMs < 2500, `leave seen in ${leaveMs} ms`);
    assert.equal((await keys(`${prefix}services/beta/`)).length, 1, 'the graceful stop revoked its lease');
  } finally {
    await meshC?.stop();
    await meshA.stop();
    await meshB.stop();
    await Promise.all([a.close(), b.close(), c.close()]);
  }
  assert.deepEqual(await keys(prefix), [], 'graceful stops withdraw every instance');
});

test('a crashed (kill -9) sidecar disappears when its lease expires', async (t) => {
  const prefix = '/fleet-crash/';
  const a = await startUpstream('a');
  t.after(() => a.close());
  const observer = await startSidecar({ registry: { etcd: etcdConfig(prefix) } });
  t.after(() => observer.stop());
  const child = await spawnSidecar({ service: 'crashy', app: a.address, registry: { etcd: etcdConfig(prefix) } });
  t.after(() => child.stop());
  try {
    assert.deepEqual(await keys(prefix), [`${prefix}services/crashy/${child.inbound}`]);
    await until('the observer to route to crashy', async () => (await upstreamOf(observer, 'crashy')) === 'a');
    child.child.kill('SIGKILL');
    const t0 = Date.now();
    await until('the lease to expire', async () => (await keys(prefix)).length === 0, 6000);
    const gone = Date.now() - t0;
    assert.ok(gone >= 1000, `not before the lease TTL (${gone} ms)`);
    await until('the observer to drop crashy', async () => (await upstreamOf(observer, 'crashy')) === 404, 2000);
  } finally {
    await child.stop();
    await observer.stop();
    await a.close();
  }
});

test('a malformed record written with etcdctl is ignored and counted; the rest keeps working', async (t) => {
  const prefix = '/fleet-bad/';
  const b = await startUpstream('b');
  t.after(() => b.close());
  await etcd.ctl('put', `${prefix}services/beta/one`, JSON.stringify({ address: b.address, labels: { version: 'v1' } }));
  const mesh = await startSidecar({ registry: { etcd: etcdConfig(prefix) } });
  t.after(() => mesh.stop());
  try {
    assert.equal(await upstreamOf(mesh, 'beta'), 'b');
    await etcd.ctl('put', `${prefix}services/beta/two`, '{"address": "127.0.0.1:notaport"}');
    await etcd.ctl('put', `${prefix}services/gamma/one`, 'not json at all');
    await etcd.ctl('put', `${prefix}services/no-instance-id`, '{}');
    const rejected = async (): Promise<number> => metricValue(await (await fetch(`${mesh.adminUrl}/metrics`)).text(), 'dreammesh_registry_rejected_records_total', { backend: 'etcd' });
    await until('three rejections', async () => (await rejected()) === 3);
    assert.equal(await upstreamOf(mesh, 'beta'), 'b');
    assert.equal(await upstreamOf(mesh, 'gamma'), 404);
    // A bad overwrite of a good record keeps the last good one.
    await etcd.ctl('put', `${prefix}services/beta/one`, '{"address": 5}');
    await until('the overwrite to be counted', async () => (await rejected()) === 4);
    assert.equal(await upstreamOf(mesh, 'beta'), 'b');
    const ready = await getJson(`${mesh.adminUrl}/ready`);
    assert.equal(ready.status, 200);
    assert.equal((ready.body.registry as { rejected: number }).rejected, 4);
    // Fixing the record is picked up.
    await etcd.ctl('put', `${prefix}services/gamma/one`, JSON.stringify({ address: b.address }));
    await until('gamma to route', async () => (await upstreamOf(mesh, 'gamma')) === 'b');
  } finally {
    await mesh.stop();
    await b.close();
  }
});

test('etcd down at start: serves from the cached snapshot; without a cache it is a clear error', async (t) => {
  const prefix = '/fleet-cache/';
  const b = await startUpstream('b');
  t.after(() => b.close());
  const cacheFile = join(dir, 'start-cache.json');
  await etcd.ctl('put', `${prefix}services/beta/one`, JSON.stringify({ address: b.address }));
  const first = await startSidecar({ registry: { etcd: etcdConfig(prefix, { cacheFile }) } });
  t.after(() => first.stop());
  assert.equal(await upstreamOf(first, 'beta'), 'b');
  await first.stop(); // flushes the cache

  const nowhere = `http://127.0.0.1:${await deadPort()}`;
  const cached = await spawnSidecar({ registry: { etcd: etcdConfig(prefix, { cacheFile, endpoints: [nowhere] }) } });
  t.after(() => cached.stop());
  try {
    // The log is written asynchronously, so the line may follow the listeners' line.
    for (let i = 0; i < 40 && !/etcd unreachable at start/.test(cached.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(cached.stderr(), /etcd unreachable at start; serving the cached registry snapshot/);
    assert.equal(await upstreamOf({ outbound: cached.outbound } as RunningSidecar, 'beta'), 'b');
    const ready = await getJson(`${cached.adminUrl}/ready`);
    assert.equal(ready.status, 200, 'ready: it serves from the last snapshot');
    const reg = ready.body.registry as { connected: boolean; message: string };
    assert.equal(reg.connected, false);
    assert.match(reg.message, /cached snapshot/);
    assert.ok((ready.body.stalenessSeconds as number) > 0);
    const metrics = await (await fetch(`${cached.adminUrl}/metrics`)).text();
    assert.equal(metricValue(metrics, 'dreammesh_registry_connected', { backend: 'etcd' }), 0);
  } finally {
    assert.equal(await cached.stop(), 0);
  }

  await assert.rejects(spawnSidecar({ registry: { etcd: etcdConfig(prefix, { cacheFile: join(dir, 'no-such-cache.json'), endpoints: [nowhere] }) } }), (e: Error) => {
    assert.match(e.message, /exited with 1/);
    assert.match(e.message, /MESH_ERR_REGISTRY_UNAVAILABLE: registry\.etcd: cannot reach etcd at http:\/\/127\.0\.0\.1:\d+ .* no usable snapshot cache/);
    return true;
  });
  await b.close();
});

test("a lost lease (revoked behind the sidecar's back) is re-granted and the record put again", async (t) => {
  const prefix = '/fleet-lease/';
  const a = await startUpstream('a');
  t.after(() => a.close());
  const mesh = await startSidecar({ service: 'alpha', app: a.address, registry: { etcd: etcdConfig(prefix) } });
  t.after(() => mesh.stop());
  const key = `${prefix}services/alpha/${mesh.inbound}`;
  const leaseOf = async (): Promise<string | undefined> => {
    // Lease ids are 64-bit: read the digits, not a JSON number.
    const m = /"lease":(\d+)/.exec(await etcd.ctl('get', '-w', 'json', key));
    return m === null ? undefined : BigInt(m[1]!).toString(16);
  };
  try {
    const first = await leaseOf();
    assert.ok(first !== undefined && first !== '0', 'registered under a lease');
    await etcd.ctl('lease', 'revoke', first);
    await until(
      'the record to come back under a new lease',
      async () => {
        const l = await leaseOf();
        return l !== undefined && l !== first;
      },
      4000,
    );
    await until('routing to alpha again', async () => (await upstreamOf(mesh, 'alpha')) === 'a', 2000);
  } finally {
    await mesh.stop();
    await a.close();
  }
  assert.equal(await leaseOf(), undefined, 'withdrawn on stop');
});
