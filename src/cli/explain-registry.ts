// The registry and DNS view `dreammesh explain` reasons with: the live registry built exactly
// as the sidecar builds it (inline services, registry.file, registry.etcd), with a short
// timeout for etcd and its snapshot cache as the fallback, and the virtual IP map of dns.*
// read (never written) from the sidecar's state file.
import { pino } from 'pino';
import type { MeshConfig } from '../config/schema.js';
import { isMeshError } from '../core/errors.js';
import { createRegistry, inlineServices } from '../registry/create-registry.js';
import { FileRegistry } from '../registry/file-registry.js';
import { MergedRegistry } from '../registry/merged-registry.js';
import type { Registry } from '../registry/registry.js';
import type { RouteTable } from '../routing/route-table.js';
import { ClusterManager } from '../upstream/cluster-manager.js';
import { createMetrics } from '../telemetry/metrics.js';
import { VirtualIps, defaultVipFile } from '../dns/virtual-ips.js';

/** etcd gets at most this long to answer explain (its snapshot cache is used otherwise). */
export const EXPLAIN_ETCD_TIMEOUT_MS = 1500;

export interface ExplainView {
  readonly table: RouteTable;
  /** dns.enabled: the virtual IP map, with every registry service given its address. */
  readonly vips: VirtualIps | undefined;
  /** What the view is built from, for the steps. */
  readonly notes: string[];
}

function withShortEtcdTimeout(config: MeshConfig): MeshConfig {
  const etcd = config.registry.etcd;
  if (etcd === undefined) return config;
  return { ...config, registry: { ...config.registry, etcd: { ...etcd, dialTimeoutMs: Math.min(etcd.dialTimeoutMs, EXPLAIN_ETCD_TIMEOUT_MS) } } };
}

function withoutEtcd(config: MeshConfig): Registry {
  const sources: Registry[] = [inlineServices(config)];
  if (config.registry.file !== undefined) sources.push(new FileRegistry(config.registry.file, pino({ level: 'silent' }), () => {}));
  return sources.length === 1 ? sources[0]! : new MergedRegistry(sources);
}

async function startWithin(reg: Registry, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([reg.start(), late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function explainView(config: MeshConfig): Promise<ExplainView> {
  const notes: string[] = [];
  const log = pino({ level: 'silent' });
  const metrics = createMetrics();
  const etcd = config.registry.etcd;
  let reg: Registry;
  if (etcd === undefined) {
    reg = withoutEtcd(config);
    await reg.start();
  } else {
    try {
      reg = createRegistry(withShortEtcdTimeout(config), { log, metrics });
      // dialTimeoutMs bounds the connection; this bounds the whole first sync.
      await startWithin(reg, EXPLAIN_ETCD_TIMEOUT_MS * 3);
      const h = reg.health();
      notes.push(
        h.connected
          ? `registry: live etcd at ${etcd.endpoints.join(', ')} (${reg.snapshot().services.size} services in all)`
          : `registry: etcd at ${etcd.endpoints.join(', ')} is unreachable: ${h.message ?? 'no contact'}`,
      );
    } catch (e) {
      reg = withoutEtcd(config);
      await reg.start();
      notes.push(`registry: etcd at ${etcd.endpoints.join(', ')} is unreachable (${isMeshError(e) ? e.message : (e as Error).message}); only the inline services and registry.file are consulted`);
    }
  }
  let vips: VirtualIps | undefined;
  if (config.dns.enabled) {
    const file = config.dns.stateFile ?? defaultVipFile();
    vips = new VirtualIps({ cidr: config.dns.cidr, ipv6Cidr: config.dns.ipv6Cidr, file, readOnly: true, log });
    const known = new Set(vips.entries().map(([s]) => s));
    const services = [...reg.snapshot().services.keys()];
    vips.assign(services);
    const fresh = services.filter((s) => !known.has(s));
    notes.push(`dns: virtual IPs from ${file}${fresh.length > 0 ? ` (${fresh.length} service(s) not in it yet get the address a sidecar would give them)` : ''}`);
  }
  // The cluster manager builds the route table exactly as the sidecar does.
  const clusters = new ClusterManager(config, metrics, log);
  const v = vips;
  if (v !== undefined) clusters.virtualIps = (ip) => v.service(ip);
  clusters.attach(reg);
  const table = clusters.table;
  clusters.detach();
  clusters.pools.closeAll(false);
  await reg.close();
  return { table, vips, notes };
}
