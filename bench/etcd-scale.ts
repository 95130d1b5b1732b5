// Scale benchmark for the etcd registry (not a test): a real etcd holding N instances across
// M services; a new sidecar (child process, `dreammesh run`) syncs from it. Measures the time
// to sync, the sidecar's RSS, and the propagation time from a put in etcd to the routing using
// it (p50/p99 over K changes: each put adds a service whose one endpoint is a live upstream;
// the change counts as propagated when a request through the sidecar to it answers 200).
//
//   npx tsc -p tsconfig.json && node dist/bench/etcd-scale.js [--instances 10000] [--services 1000] [--changes 200]
// The sidecar inherits the environment, so NODE_OPTIONS=--max-semi-space-size=4 (say) applies to it.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startEtcd } from '../test/helpers/etcd-server.js';
import { encodeInstance, instanceKey } from '../src/registry/etcd-records.js';
import { peakRssMiB, rssMiB } from './proc-stats.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { instances: { type: 'string', default: '10000' }, services: { type: 'string', default: '1000' }, changes: { type: 'string', default: '200' } } });
  const instances = Number(values.instances);
  const services = Number(values.services);
  const changes = Number(values.changes);
  const prefix = '/scale/';
  const etcd = await startEtcd();
  const dir = await mkdtemp(join(tmpdir(), 'dm-etcd-scale-'));
  const upstream: Server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamAddr = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const writer = new Etcd3({ hosts: etcd.url });
  let child: ReturnType<typeof spawn> | undefined;
  try {
    // 1. Fill etcd: instance i belongs to service i % services; 10.x.y.z addresses, labels like a real fleet.
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        for (let i = next++; i < instances; i = next++) {
          const svc = `svc-${i % services}`;
          const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`;
          await writer.put(instanceKey(prefix, svc, address)).value(encodeInstance({ address, weight: 1 + (i % 3), labels: { version: `v${i % 2}`, zone: `z${i % 4}` } }));
        }
      }),
    );
    const fillMs = performance.now() - t0;
    process.stderr.write(`etcd filled: ${instances} instances across ${services} services in ${(fillMs / 1000).toFixed(1)} s\n`);

    // 2. A new sidecar syncs.
    const configFile = join(dir, 'mesh.yaml');
    await writeFile(
      configFile,
      stringify({
        listeners: { outbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
        accessLog: { enabled: false },
        logLevel: 'info',
        registry: { etcd: { endpoints: [etcd.url], prefix, cacheFile: join(dir, 'cache.json') } },
      }),
    );
    const spawnedAt = performance.now();
    const c = spawn(process.execPath, [CLI, 'run', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let err = '';
    const started = await new Promise<{ outbound: string; readyMs: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sidecar did not start:\n${err}`)), 60_000);
      c.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /dreammesh: outbound (\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve({ outbound: m[1]!, readyMs: performance.now() - spawnedAt });
        }
      });
      c.once('exit', (code) => reject(new Error(`sidecar exited ${code}:\n${err}`)));
    });
    const syncLine = err.split('\n').find((l) => l.includes('etcd registry synced'));
    const sync = syncLine ? (JSON.parse(syncLine) as { ms: number; instances: number; services: number }) : undefined;
    const rssAfterSync = rssMiB(c.pid!);
    const peakAfterSync = peakRssMiB(c.pid!);

    // 3. Propagation: put → first 200 through the sidecar.
    const lat: number[] = [];
    for (let k = 0; k < changes; k++) {
      const svc = `new-${k}`;
      const t = performance.now();
      await writer.put(instanceKey(prefix, svc, upstreamAddr)).value(encodeInstance({ address: upstreamAddr }));
      for (;;) {
        const r = await request(`http://${started.outbound}/`, { headers: { host: svc } });
        await r.body.dump();
        if (r.statusCode === 200) break;
        if (performance.now() - t > 10_000) throw new Error(`${svc} not routed after 10 s`);
        // Poll every ~2 ms rather than flat out: a tight loop of 404s would measure the request
        // path's garbage more than the registry's memory (resolution stays ~2 ms).
        await new Promise((r) => setTimeout(r, 2));
      }
      lat.push(performance.now() - t);
    }
    lat.sort((a, b) => a - b);
    const rssPeak = peakRssMiB(c.pid!);
    await new Promise((r) => setTimeout(r, 3000));
    const rssSettled = rssMiB(c.pid!);
    const result = {
      instances,
      services,
      fillSeconds: +(fillMs / 1000).toFixed(2),
      registrySyncMs: sync?.ms ?? null,
      processReadyMs: Math.round(started.readyMs),
      rssMiBAfterSync: +rssAfterSync.toFixed(1),
      rssMiBPeakDuringSync: +peakAfterSync.toFixed(1),
      rssMiBPeak: +rssPeak.toFixed(1),
      rssMiBSettled: +rssSettled.toFixed(1),
      propagationMs: { changes, p50: +pct(lat, 50).toFixed(1), p99: +pct(lat, 99).toFixed(1), max: +lat[lat.length - 1]!.toFixed(1) },
      targets: { syncMs: 2000, rssMiB: 150, propagationP99Ms: 1000 },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    const ok = (sync?.ms ?? Infinity) < 2000 && rssPeak < 150 && result.propagationMs.p99 < 1000; // the strict reading: peak RSS over the whole run
    process.stderr.write(
      `sync ${sync?.ms} ms (ready ${result.processReadyMs} ms incl. node start), RSS ${result.rssMiBAfterSync} MiB after sync (peak ${result.rssMiBPeakDuringSync}) / ${result.rssMiBPeak} MiB peak after the changes / ${result.rssMiBSettled} MiB settled, ` +
        `propagation p50 ${result.propagationMs.p50} ms p99 ${result.propagationMs.p99} ms: ${ok ? 'within targets' : 'MISSES a target'}\n`,
    );
  } finally {
    child?.kill('SIGTERM');
    writer.close();
    upstream.close();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`etcd-scale: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
