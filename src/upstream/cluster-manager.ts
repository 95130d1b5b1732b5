// Keeps the route table, the clusters and the connection pools in step with the registry:
// each snapshot rebuilds the table and updates clusters in place.
import type { MeshConfig } from '../config/schema.js';
import type { Registry, RegistrySnapshot } from '../registry/registry.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Logger } from 'pino';
import { RouteTable } from '../routing/route-table.js';
import { formatHostPort } from '../core/address.js';
import { Cluster } from './cluster.js';
import { Pools } from './pools.js';

export class ClusterManager {
  table: RouteTable;
  readonly pools: Pools;
  private readonly clusters = new Map<string, Cluster>();
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly config: MeshConfig,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.pools = new Pools(config, metrics);
    this.table = new RouteTable(config, { version: 0, services: new Map() });
  }

  attach(registry: Registry): void {
    this.apply(registry.snapshot());
    this.unwatch = registry.watch((s) => this.apply(s));
  }

  detach(): void {
    this.unwatch?.();
  }

  cluster(service: string): Cluster | undefined {
    return this.clusters.get(service);
  }

  allClusters(): readonly Cluster[] {
    return [...this.clusters.values()];
  }

  private apply(snapshot: RegistrySnapshot): void {
    this.table = new RouteTable(this.config, snapshot);
    const wanted = new Set<string>();
    for (const [name, svc] of snapshot.services) {
      let c = this.clusters.get(name);
      if (c === undefined) {
        c = new Cluster(name, this.config, svc.endpoints);
        c.onEject = (e, ms) => {
          this.metrics.endpointEjections.inc({ service: name });
          this.log.warn({ service: name, endpoint: e.address, ejectedMs: ms }, 'endpoint ejected after consecutive failures');
        };
        this.clusters.set(name, c);
      } else c.update(svc.endpoints);
      for (const e of svc.endpoints) wanted.add(formatHostPort(e.host, e.port));
    }
    for (const name of this.clusters.keys()) if (!snapshot.services.has(name)) this.clusters.delete(name);
    this.pools.retain(wanted);
    this.log.debug({ version: snapshot.version, services: snapshot.services.size }, 'registry snapshot applied');
  }
}
