// Fleet on etcd: a sidecar with mTLS on registers itself marked mtls, and its peers reach it
// over mTLS without any per-endpoint configuration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, etcdTestConfig } from '../helpers/etcd-server.js';
import { caInit, issue, mtlsBlock, dreammesh } from '../helpers/mtls-mesh.js';
import { spawnSidecar } from '../helpers/sidecar.js';
import { startUpstream } from '../helpers/upstream.js';
import { viaSidecar } from '../helpers/http.js';
import { until } from '../helpers/until.js';

test('a strict-mTLS sidecar registers mtls: true in etcd; its peer reaches it over mTLS and the app sees the caller', async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const dir = await mkdtemp(join(tmpdir(), 'dm-mtls-etcd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await caInit(join(dir, 'ca'));
  await issue(join(dir, 'ca'), 'alpha', join(dir, 'alpha'));
  await issue(join(dir, 'ca'), 'beta', join(dir, 'beta'));
  const app = await startUpstream('beta-app');
  t.after(() => app.close());
  const prefix = '/mtls-fleet/';
  const beta = await spawnSidecar({ service: 'beta', app: app.address, mtls: mtlsBlock(join(dir, 'beta'), 'strict'), registry: { etcd: etcdTestConfig(etcd, dir, prefix) } });
  t.after(() => beta.stop());
  const alpha = await spawnSidecar({ service: 'alpha', mtls: mtlsBlock(join(dir, 'alpha'), 'permissive'), registry: { etcd: etcdTestConfig(etcd, dir, prefix) } });
  t.after(() => alpha.stop());
  const rec = JSON.parse((await etcd.ctl('get', '--print-value-only', `${prefix}services/beta/${beta.inbound}`)).trim()) as Record<string, unknown>;
  assert.deepEqual(rec, { address: beta.inbound, weight: 1, labels: {}, mtls: true });
  await until('alpha reaches beta', async () => (await viaSidecar(alpha.outbound, 'beta', '/x')).status === 200);
  assert.equal(app.seen.at(-1)?.headers['x-dreammesh-caller'], 'alpha');
  // `dreammesh services` shows it, and `put --mtls` writes the mark for instances added by hand.
  const list = await dreammesh('services', 'list', '--json', '--config', alpha.configFile);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as { service: string; mtls?: boolean }[];
  assert.equal(rows.find((r) => r.service === 'beta')?.mtls, true);
  const put = await dreammesh('services', 'put', 'gamma', '127.0.0.1:9', '--mtls', '--config', alpha.configFile);
  assert.equal(put.code, 0, put.stderr);
  const gamma = JSON.parse((await etcd.ctl('get', '--print-value-only', `${prefix}services/gamma/127.0.0.1:9`)).trim()) as Record<string, unknown>;
  assert.equal(gamma.mtls, true);
});
