// etcd outages while traffic flows: routing continues on the last known endpoints, /ready stays
// 200 and reports the registry as disconnected, and on return the registry resyncs fully
// (changes and deletions missed while away, even past a compaction).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream } from '../helpers/upstream.js';
import { viaSidecar, metricValue, getJson } from '../helpers/http.js';
import { startEtcd, etcdTestConfig, type EtcdServer } from '../helpers/etcd-server.js';
import { until } from '../helpers/until.js';

let etcd: EtcdServer;
let dir: string;
before(async () => {
  etcd = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), 'dm-etcd-outage-'));
});
after(async () => {
  await etcd.stop();
  await rm(dir, { recursive: true, force: true });
});

const etcdConfig = (prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> => etcdTestConfig(etcd, dir, prefix, extra);

const upstreamOf = async (mesh: RunningSidecar, host: string): Promise<string | number> => {
  const r = await viaSidecar(mesh.outbound, host);
  return r.status === 200 ? String(r.headers['x-upstream']) : r.status;
};

const registryState = async (mesh: RunningSidecar): Promise<{ status: number; connected: boolean; staleness: number }> => {
  const r = await getJson(`${mesh.adminUrl}/ready`);
  return { status: r.status, connected: (r.body.registry as { connected: boolean }).connected, staleness: r.body.stalenessSeconds as number };
};

/** Sends requests in a bounded loop until stopped; collects anything that was not a 200 from an allowed upstream. */
function traffic(mesh: RunningSidecar, host: string, allowed: () => ReadonlySet<string>): { stop(): Promise<{ sent: number; failures: string[] }> } {
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const deadline = Date.now() + 20_000;
  const loop = (async () => {
    while (running && sent < 20_000 && Date.now() < deadline) {
      sent += 1;
      const u = await upstreamOf(mesh, host).catch((e: Error) => e.message);
      if (!allowed().has(String(u))) failures.push(String(u));
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { sent, failures };
    },
  };
}

test('etcd killed and restarted while traffic flows: no request fails, /ready stays 200, registry resyncs', async (t) => {
  const prefix = '/outage-kill/';
  const a = await startUpstream('a');
  t.after(() => a.close());
  const b = await startUpstream('b');
  t.after(() => b.close());
  const meshA = await startSidecar({ service: 'alpha', app: a.address, registry: { etcd: etcdConfig(prefix) } });
  t.after(() => meshA.stop());
  const meshB = await startSidecar({ service: 'beta', app: b.address, registry: { etcd: etcdConfig(prefix) } });
  t.after(() => meshB.stop());
  try {
    await until('A to see beta', async () => (await upstreamOf(meshA, 'beta')) === 'b');
    const flow = traffic(meshA, 'beta', () => new Set(['b']));
    await new Promise((r) => setTimeout(r, 200));
    await etcd.kill();
    await until('A to notice etcd is gone', async () => !(await registryState(meshA)).connected);
    await new Promise((r) => setTimeout(r, 500));
    const down = await registryState(meshA);
    assert.equal(down.status, 200, '/ready stays 200 while a snapshot serves');
    assert.ok(down.staleness >= 0.4, `staleness grows while away (${down.staleness})`);
    const metrics = await (await fetch(`${meshA.adminUrl}/metrics`)).text();
    assert.equal(metricValue(metrics, 'dreammesh_registry_connected', { backend: 'etcd' }), 0);
    assert.ok(metricValue(metrics, 'dreammesh_registry_staleness_seconds', { backend: 'etcd' }) >= 0.4);
    await etcd.restart();
    const back = await until('A to resync', async () => (await registryState(meshA)).connected);
    const { sent, failures } = await flow.stop();
    assert.deepEqual(failures, [], `no failed request out of ${sent}`);
    assert.ok(sent > 20, `traffic flowed during the outage (${sent} requests)`);
    assert.ok(back < 4000, `resynced ${back} ms after etcd returned`);
    assert.equal((await registryState(meshA)).staleness, 0);
    // The watch is live again: a new service shows up without restarting anything.
    await etcd.ctl('put', `${prefix}services/gamma/one`, JSON.stringify({ address: b.address }));
    await until('gamma after the outage', async () => (await upstreamOf(meshA, 'gamma')) === 'b', 2000);
    // Both registrations survived (same lease or a new one).
    await until('both instances registered', async () => (await etcd.ctl('get', '--prefix', '--keys-only', `${prefix}services/`)).includes(`services/beta/${meshB.inbound}`));
  } finally {
    await meshA.stop();
    await meshB.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

/** A TCP relay to etcd that the test can cut (partition one sidecar) and heal. */
async function partitionableProxy(target: number): Promise<{ url: string; cut(): void; heal(): void; close(): Promise<void> }> {
  let open = true;
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    if (!open) return down.destroy();
    const up = connect(target, '127.0.0.1');
    sockets.add(down).add(up);
    const end = (): void => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on('error', end).on('close', end).pipe(up);
    up.on('error', end).on('close', end).pipe(down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => {
      open = false;
      for (const s of sockets) s.destroy();
    },
    heal: () => {
      open = true;
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

test('a partitioned sidecar keeps its endpoints, then applies the changes and deletions it missed (past a compaction)', async (t) => {
  const prefix = '/outage-partition/';
  const b = await startUpstream('b');
  t.after(() => b.close());
  const c = await startUpstream('c');
  t.after(() => c.close());
  await etcd.ctl('put', `${prefix}services/beta/one`, JSON.stringify({ address: b.address }));
  await etcd.ctl('put', `${prefix}services/beta/two`, JSON.stringify({ address: c.address }));
  const proxy = await partitionableProxy(etcd.clientPort);
  t.after(() => proxy.close());
  const mesh = await startSidecar({ registry: { etcd: etcdConfig(prefix, { endpoints: [proxy.url] }) } });
  t.after(() => mesh.stop());
  try {
    await until('both beta instances', async () => {
      const seen = new Set([await upstreamOf(mesh, 'beta'), await upstreamOf(mesh, 'beta'), await upstreamOf(mesh, 'beta')]);
      return seen.has('b') && seen.has('c');
    });
    const flow = traffic(mesh, 'beta', () => new Set(['b', 'c']));
    proxy.cut();
    await until('the sidecar to notice', async () => !(await registryState(mesh)).connected);
    await etcd.ctl('del', `${prefix}services/beta/two`);
    await etcd.ctl('put', `${prefix}services/gamma/one`, JSON.stringify({ address: b.address }));
    const rev = (JSON.parse(await etcd.ctl('get', '-w', 'json', `${prefix}services/gamma/one`)) as { header: { revision: number } }).header.revision;
    await etcd.ctl('compact', String(rev));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await upstreamOf(mesh, 'gamma'), 404, 'nothing seen while partitioned');
    proxy.heal();
    await until('the sidecar to resync', async () => (await registryState(mesh)).connected);
    const { sent, failures } = await flow.stop();
    assert.deepEqual(failures, [], `no failed request out of ${sent} (c stayed up, so routing to it while away is fine)`);
    for (let i = 0; i < 6; i++) assert.equal(await upstreamOf(mesh, 'beta'), 'b', 'the deletion missed while away is applied');
    assert.equal(await upstreamOf(mesh, 'gamma'), 'b', 'the addition missed while away is applied');
  } finally {
    await mesh.stop();
    await proxy.close();
    await Promise.all([b.close(), c.close()]);
  }
});
