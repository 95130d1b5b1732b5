// `dreammesh explain` consults the live registry (a real etcd), falls back to the etcd snapshot
// cache with a clear message when etcd is down (within a short timeout), and explains virtual
// IPs (dns.enabled) as the service they stand for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { startEtcd, etcdTestConfig, type EtcdServer } from '../helpers/etcd-server.js';
import { CLI } from '../helpers/sidecar.js';

const run = promisify(execFile);
let etcd: EtcdServer;
let dir = '';

before(async () => {
  etcd = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), 'dm-explain-live-'));
});
after(async () => {
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function explain(config: string, target: string): Promise<{ out: string; ms: number }> {
  const t0 = Date.now();
  const { stdout } = await run(process.execPath, [CLI, 'explain', '--config', config, target], { timeout: 20_000 });
  return { out: stdout, ms: Date.now() - t0 };
}

test('explain: services from live etcd, VIPs as their service, the snapshot cache when etcd is down', async () => {
  const prefix = '/explain-live/';
  await etcd.ctl('put', `${prefix}services/orders/one`, JSON.stringify({ address: '10.44.0.9:8080' }));
  const config = join(dir, 'mesh.yaml');
  const stateFile = join(dir, 'dns-vips.json');
  await writeFile(
    config,
    stringify({
      transparent: { enabled: true, redirect: { proxyUid: 0, captureDns: true } },
      registry: { etcd: etcdTestConfig(etcd, dir, prefix) },
      dns: { enabled: true, stateFile },
    }),
  );
  const live = await explain(config, 'orders:8080');
  assert.match(live.out, /registry: live etcd at http:\/\/127\.0\.0\.1:\d+/);
  assert.match(live.out, /mesh service "orders"/);
  assert.match(live.out, /10\.44\.0\.9:8080/);
  const vip = /answers orders with (240\.240\.\d+\.\d+), the virtual IP of service "orders" \(the app's port 53 is captured to it\)/.exec(live.out)?.[1];
  assert.ok(vip !== undefined, live.out);
  const byVip = await explain(config, `${vip}:6000`);
  assert.match(byVip.out, new RegExp(`mesh service "orders" \\(${vip.replace(/\./g, '\\.')} is the virtual IP of service "orders"`));
  assert.match(byVip.out, /registered port \(whatever port the virtual IP was dialled on\)/);
  assert.match((await explain(config, '240.240.0.1:80')).out, /240\.240\.0\.1 is in dns\.cidr but is no service's virtual IP/);

  await etcd.kill();
  const down = await explain(config, 'orders:8080');
  assert.match(down.out, /etcd at http:\/\/127\.0\.0\.1:\d+ is unreachable: etcd unreachable at start .*serving the cached snapshot/);
  assert.match(down.out, /mesh service "orders"/, 'the cached snapshot still knows orders');
  assert.ok(down.ms < 8000, `explain took ${down.ms} ms with etcd down`);
  await etcd.restart();
});
