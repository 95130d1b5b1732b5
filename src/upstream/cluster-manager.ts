// Keeps the route table, the clusters and the connection pools in step with the registry.
// A snapshot is applied incrementally: only services whose record changed (registries keep
// unchanged records identical between snapshots) touch their cluster, the endpoint index and
// the pools, so a change costs in proportion to what changed, not to the size of the mesh.
import type { MeshConfig } from '../config/schema.js';
import type { Registry, RegistrySnapshot, ServiceRecord } from '../registry/registry.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Logger } from 'pino';
import { RouteTable } from '../routing/route-table.js';
import { EndpointIndex } from '../routing/endpoint-index.js';
import { formatHostPort } from '../core/address.js';
import { Cluster } from './cluster.js';
import { Pools } from './pools.js';
import type { LookupFunction } from 'node:net';

export class ClusterManager {
  table: RouteTable;
  readonly pools: Pools;
  private readonly clusters = new Map<string, Cluster>();
  /** The record each cluster was last built from. */
  private readonly applied = new Map<string, ServiceRecord>();
  private readonly index = new EndpointIndex();
  private unwatch: (() => void) | undefined;
  private snapshot: RegistrySnapshot = { version: 0, services: new Map() };
  /** dns.enabled: the service a virtual IP stands for (src/dns/mesh-dns.ts). */
  virtualIps: ((ip: string) => string | undefined) | undefined;

  constructor(
    private config: MeshConfig,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    egressLookup?: (port: number) => LookupFunction,
  ) {
    this.pools = new Pools(config, metrics, egressLookup);
    this.table = new RouteTable(config, { version: 0, services: new Map() }, this.index, (ip) => this.virtualIps?.(ip));
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

  /**
   * A reloaded config: clusters are rebuilt with its policy (lb, retries, timeouts, outlier;
   * ejections start afresh) and the route table with its routes. Requests in flight keep the
   * cluster they picked from.
   */
  reconfigure(config: MeshConfig): void {
    this.config = config;
    this.pools.reconfigure(config);
    for (const [name, record] of this.applied) this.clusters.set(name, this.newCluster(name, record));
    this.table = new RouteTable(config, this.snapshot, this.index, (ip) => this.virtualIps?.(ip));
  }

  private newCluster(name: string, record: ServiceRecord): Cluster {
    const c = new Cluster(name, this.config, record.endpoints);
    c.onEject = (e, ms) => {
      this.metrics.endpointEjections.inc({ service: name });
      this.log.warn({ service: name, endpoint: e.address, ejectedMs: ms }, 'endpoint ejected after consecutive failures');
    };
    return c;
  }

  private apply(snapshot: RegistrySnapshot): void {
    this.snapshot = snapshot;
    const unused = new Set<string>();
    for (const [name, svc] of snapshot.services) {
      const prev = this.applied.get(name);
      if (prev === svc) continue;
      if (prev !== undefined) this.unindex(name, prev, unused);
      for (const e of svc.endpoints) this.index.add(formatHostPort(e.host, e.port), name);
      const c = this.clusters.get(name);
      if (c === undefined) this.clusters.set(name, this.newCluster(name, svc));
      else c.update(svc.endpoints);
      this.applied.set(name, svc);
    }
    for (const [name, prev] of this.applied) {
      if (snapshot.services.has(name)) continue;
      this.unindex(name, prev, unused);
      this.clusters.delete(name);
      this.applied.delete(name);
    }
    this.table = new RouteTable(this.config, snapshot, this.index, (ip) => this.virtualIps?.(ip));
    // Pools of addresses no service uses any more close gracefully (in-flight requests finish).
    this.pools.drop([...unused].filter((a) => !this.index.has(a)));
    this.log.debug({ version: snapshot.version, services: snapshot.services.size }, 'registry snapshot applied');
  }

  private unindex(name: string, record: ServiceRecord, unused: Set<string>): void {
    for (const e of record.endpoints) {
      const address = formatHostPort(e.host, e.port);
      if (this.index.remove(address, name)) unused.add(address);
    }
  }
}
