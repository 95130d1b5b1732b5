// registry.etcd.tls: a sidecar syncs, watches and registers over mutual TLS; a wrong CA is a
// clear start error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar } from '../helpers/sidecar.js';
import { startUpstream } from '../helpers/upstream.js';
import { viaSidecar } from '../helpers/http.js';
import { makeTestCerts, startEtcd } from '../helpers/etcd-server.js';

test('sync, watch and registration over mutual TLS', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-etcd-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const certs = await makeTestCerts(dir);
  const etcd = await startEtcd({ tls: certs });
  t.after(() => etcd.stop());
  const a = await startUpstream('a');
  t.after(() => a.close());
  const tls = { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile };
  const etcdCfg = { endpoints: [etcd.url], prefix: '/tls/', leaseTtlSeconds: 2, dialTimeoutMs: 3000, withdrawGraceMs: 0, cacheFile: join(dir, 'cache.json'), tls };
  const mesh = await startSidecar({ service: 'secure', app: a.address, registry: { etcd: etcdCfg } });
  t.after(() => mesh.stop());
  assert.match(await etcd.ctl('get', '--prefix', '--keys-only', '/tls/'), new RegExp(`/tls/services/secure/${mesh.inbound}`));
  assert.equal((await viaSidecar(mesh.outbound, 'secure')).status, 200, 'routes to its own registered instance');

  // Without a client certificate etcd refuses; with no cache that is a clear start error.
  await assert.rejects(startSidecar({ registry: { etcd: { ...etcdCfg, cacheFile: join(dir, 'none.json'), tls: { caFile: certs.caFile } } } }), /MESH_ERR_REGISTRY_UNAVAILABLE|cannot reach etcd/);
  // A missing certificate file names the field.
  await assert.rejects(startSidecar({ registry: { etcd: { ...etcdCfg, tls: { caFile: join(dir, 'nope.pem') } } } }), /registry\.etcd\.tls\.caFile: cannot read .*nope\.pem: ENOENT/);
});
