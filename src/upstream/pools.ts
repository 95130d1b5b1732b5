// Keep-alive connection pools, one undici Pool per upstream address. A pool whose endpoint
// left the registry is closed gracefully: requests already on it finish, new ones go elsewhere.
import { Pool } from 'undici';
import type { MeshConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import { formatHostPort } from '../core/address.js';

const MAX_EGRESS_POOLS = 256;

export class Pools {
  private readonly pools = new Map<string, Pool>();
  /** Pools opened for egress destinations: never closed by registry changes. */
  private readonly egress = new Set<string>();

  constructor(
    private readonly config: MeshConfig,
    private readonly metrics: Metrics,
  ) {}

  /** The pool for host:port (or a unix socket path), created on first use. */
  get(key: { host: string; port: number } | { socketPath: string }, service: string, connectMs: number): Pool {
    const id = 'socketPath' in key ? `unix:${key.socketPath}` : formatHostPort(key.host, key.port);
    let pool = this.pools.get(id);
    if (pool !== undefined) return pool;
    const isEgress = service === 'egress' || service.startsWith('egress:');
    if (isEgress && this.pools.size >= MAX_EGRESS_POOLS) this.evictOneEgress();
    const origin = 'socketPath' in key ? 'http://localhost' : `http://${id}`;
    pool = new Pool(origin, {
      connections: this.config.limits.maxConnectionsPerEndpoint,
      pipelining: 1,
      connectTimeout: connectMs,
      keepAliveTimeout: Math.min(this.config.timeouts.idleMs, 4000),
      keepAliveMaxTimeout: this.config.timeouts.idleMs,
      headersTimeout: 0,
      bodyTimeout: 0,
      ...('socketPath' in key ? { socketPath: key.socketPath } : {}),
    });
    const label = { service };
    pool.on('connect', () => {
      this.metrics.upstreamConnections.inc(label);
      this.metrics.upstreamConnectionsOpened.inc(label);
    });
    pool.on('disconnect', () => this.metrics.upstreamConnections.dec(label));
    pool.on('connectionError', () => {});
    this.pools.set(id, pool);
    if (isEgress) this.egress.add(id);
    return pool;
  }

  /** Closes the pools of addresses that left the registry (in-flight requests still complete). */
  drop(addresses: Iterable<string>): void {
    for (const id of addresses) {
      const pool = this.pools.get(id);
      if (pool === undefined || this.egress.has(id)) continue;
      this.pools.delete(id);
      pool.close().catch(() => {});
    }
  }

  private evictOneEgress(): void {
    const first = this.egress.values().next();
    if (first.done === true) return;
    const pool = this.pools.get(first.value);
    this.pools.delete(first.value);
    this.egress.delete(first.value);
    pool?.close().catch(() => {});
  }

  async closeAll(force: boolean): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => (force ? p.destroy() : p.close()).catch(() => {})));
  }
}
