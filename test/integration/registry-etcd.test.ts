// The etcd backend against the shared registry conformance suite, on a real etcd. Each test
// gets its own key prefix; changes come from a separate client (and etcdctl for bad records).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Etcd3 } from 'etcd3';
import { EtcdRegistry } from '../../src/registry/etcd-registry.js';
import { encodeInstance, instanceKey } from '../../src/registry/etcd-records.js';
import { runRegistrySuite } from '../registry-conformance.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd-server.js';

let etcd: EtcdServer;
let writer: Etcd3;
let n = 0;
before(async () => {
  etcd = await startEtcd();
  writer = new Etcd3({ hosts: etcd.url });
});
after(async () => {
  writer.close();
  await etcd.stop();
});

runRegistrySuite({
  name: 'etcd',
  async create() {
    const prefix = `/conformance-${process.pid}-${++n}/`;
    const dir = await mkdtemp(join(tmpdir(), 'dm-etcd-conformance-'));
    const registry = new EtcdRegistry({ endpoints: [etcd.url], prefix, leaseTtlSeconds: 2, dialTimeoutMs: 3000, withdrawGraceMs: 0, cacheFile: join(dir, 'cache.json') }, { log: pino({ level: 'silent' }) });
    return {
      registry,
      put: async (service, i) => {
        await writer.put(instanceKey(prefix, service, i.address)).value(encodeInstance(i));
      },
      remove: async (service, address) => {
        await writer.delete().key(instanceKey(prefix, service, address));
      },
      putMalformed: async (service) => {
        await etcd.ctl('put', instanceKey(prefix, service, 'x1'), '{"address": "nowhere", "weight": 1}');
      },
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

test('etcd registry: a burst of changes is coalesced into few snapshots, none lost', async () => {
  const prefix = `/burst-${process.pid}/`;
  const dir = await mkdtemp(join(tmpdir(), 'dm-etcd-burst-'));
  const registry = new EtcdRegistry({ endpoints: [etcd.url], prefix, leaseTtlSeconds: 2, dialTimeoutMs: 3000, withdrawGraceMs: 0, cacheFile: join(dir, 'cache.json') }, { log: pino({ level: 'silent' }) });
  try {
    await registry.start();
    let snapshots = 0;
    registry.watch(() => (snapshots += 1));
    await Promise.all(Array.from({ length: 300 }, (_, i) => writer.put(instanceKey(prefix, `svc-${i % 30}`, `10.0.0.${i % 250}:${8000 + i}`)).value(encodeInstance({ address: `10.0.0.${i % 250}:${8000 + i}` }))));
    const deadline = Date.now() + 5000;
    const count = (): number => [...registry.snapshot().services.values()].reduce((n, s) => n + s.endpoints.length, 0);
    while (count() < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(count(), 300);
    assert.equal(registry.snapshot().services.size, 30);
    assert.ok(snapshots < 100, `300 puts became ${snapshots} snapshots`);
  } finally {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  }
});
