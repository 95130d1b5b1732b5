// Upstream connection pools, one per address (host:port or a unix socket path). A pool whose
// endpoint left the registry is closed gracefully: exchanges already on it finish, new ones
// go elsewhere. Pools opened for egress destinations are capped and evicted oldest first.
import { connect, type LookupFunction, type Socket } from 'node:net';
import { dialTcp } from '../steering/socket-options.js';
import type { MeshConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import { formatHostPort } from '../core/address.js';
import { EndpointPool } from './endpoint-pool.js';
import { reusableRead } from './read-buffer.js';
import { ALPN_H2, ALPN_HTTP1, dialMtls } from '../tls/outbound-tls.js';
import type { IdentityStore } from '../tls/identity-store.js';
import { H2SessionPool, tcpDial } from '../http2/h2-session-pool.js';

const MAX_EGRESS_POOLS = 256;
/** Idle pooled connections are closed after this long (or timeouts.idleMs if shorter). */
const KEEP_ALIVE_MS = 4000;

/**
 * `source`: TPROXY original source, the client address the connection is bound to.
 * `mtls`: the endpoint is a sidecar's inbound listener reached over mTLS (its own pools, per service).
 */
export type PoolKey = { readonly host: string; readonly port: number; readonly source?: string | undefined; readonly mtls?: boolean } | { readonly socketPath: string };

export class Pools {
  private readonly pools = new Map<string, EndpointPool>();
  /** Pools opened for egress destinations: never closed by registry changes. */
  private readonly egress = new Set<string>();
  /** mTLS pool ids (HTTP/1 and HTTP/2) by endpoint address (one per service routed to that address). */
  private readonly mtlsIds = new Map<string, Set<string>>();
  /** This sidecar's workload identity, when mTLS files are configured. */
  identity: IdentityStore | undefined;
  /** Multiplexed HTTP/2 sessions per endpoint address (HTTP/2 downstream calls). */
  private readonly h2pools = new Map<string, H2SessionPool>();
  private readonly egressH2 = new Set<string>();

  constructor(
    private config: MeshConfig,
    private readonly metrics: Metrics,
    /** Resolves egress host names (the loop guard refuses names that lead to this sidecar). */
    private readonly egressLookup?: (port: number) => LookupFunction,
  ) {}

  /** Pools opened from now on use the new limits and timeouts; open ones keep theirs. */
  reconfigure(config: MeshConfig): void {
    this.config = config;
  }

  /** The pool for host:port (or a unix socket path), created on first use. */
  get(key: PoolKey, service: string): EndpointPool {
    const source = 'socketPath' in key ? undefined : key.source;
    const address = 'socketPath' in key ? `unix:${key.socketPath}` : formatHostPort(key.host, key.port);
    const mtls = !('socketPath' in key) && key.mtls === true;
    // The peer's identity is checked against the service routed to, so mTLS pools are per service.
    const id = mtls ? `${address}|mtls|${service}` : address + (source !== undefined ? `@${source}` : '');
    let pool = this.pools.get(id);
    if (pool !== undefined) return pool;
    // Pools per client address (TPROXY original source) are capped and evicted like egress ones.
    const isEgress = service === 'egress' || source !== undefined;
    const lookup = isEgress && this.egressLookup !== undefined && !('socketPath' in key) ? { lookup: this.egressLookup(key.port) } : {};
    if (isEgress && this.egress.size >= MAX_EGRESS_POOLS) this.evictOneEgress();
    const gauge = this.metrics.upstreamConnections.labels({ service });
    const opened = this.metrics.upstreamConnectionsOpened.labels({ service });
    pool = new EndpointPool({
      address,
      dial: mtls
        ? () => {
            const s: Socket = dialMtls(
              this.identity,
              { host: (key as { host: string }).host, port: (key as { port: number }).port, service, alpn: ALPN_HTTP1 },
              { onread: reusableRead(() => s), mark: this.config.transparent.redirect.proxyMark },
            );
            return s;
          }
        : 'socketPath' in key
          ? () => {
              const s: Socket = connect({ path: key.socketPath, onread: reusableRead(() => s) });
              return s;
            }
          : () => {
              // transparent.redirect.proxyMark: marked before the SYN, so capture skips it.
              const r = this.config.transparent.redirect;
              const s: Socket = dialTcp({
                host: key.host,
                port: key.port,
                // Original source: the tproxy mark routes the app's replies back to this socket.
                mark: source !== undefined ? r.tproxyMark : r.proxyMark,
                transparentSource: source,
                noDelay: true,
                keepAlive: true,
                ...lookup,
                onread: reusableRead(() => s),
              });
              return s;
            },
      maxConnections: this.config.limits.maxConnectionsPerEndpoint,
      keepAliveMs: Math.min(this.config.timeouts.idleMs, KEEP_ALIVE_MS),
      idleMs: this.config.timeouts.idleMs,
      onOpen: () => {
        gauge.inc();
        opened.inc();
      },
      onClose: () => gauge.dec(),
    });
    this.pools.set(id, pool);
    if (isEgress) this.egress.add(id);
    if (mtls) this.mtlsIdsOf(address).add(id);
    return pool;
  }

  private mtlsIdsOf(address: string): Set<string> {
    let ids = this.mtlsIds.get(address);
    if (ids === undefined) this.mtlsIds.set(address, (ids = new Set()));
    return ids;
  }

  /**
   * The HTTP/2 sessions to a service endpoint, created on first use: h2c, or for an endpoint
   * marked mtls TLS 1.3 with ALPN h2 and the same identity check as HTTP/1 (per service).
   */
  h2(key: { readonly host: string; readonly port: number; readonly mtls?: boolean }, service: string): H2SessionPool {
    const address = formatHostPort(key.host, key.port);
    const mtls = key.mtls === true;
    const id = mtls ? `${address}|mtls|${service}` : address;
    let pool = this.h2pools.get(id);
    if (pool !== undefined) return pool;
    if (service === 'egress') {
      if (this.egressH2.size >= MAX_EGRESS_POOLS) {
        const first = this.egressH2.values().next().value!;
        this.egressH2.delete(first);
        this.h2pools.get(first)?.close(false);
        this.h2pools.delete(first);
      }
      this.egressH2.add(id);
    }
    const gauge = this.metrics.upstreamConnections.labels({ service });
    const opened = this.metrics.upstreamConnectionsOpened.labels({ service });
    const mark = this.config.transparent.redirect.proxyMark;
    pool = new H2SessionPool({
      address,
      dial: mtls ? () => dialMtls(this.identity, { host: key.host, port: key.port, service, alpn: ALPN_H2 }, { mark }) : tcpDial(key.host, key.port, mark),
      maxSessions: this.config.limits.maxConnectionsPerEndpoint,
      keepAliveMs: Math.min(this.config.timeouts.idleMs, KEEP_ALIVE_MS),
      onOpen: () => {
        gauge.inc();
        opened.inc();
      },
      onClose: () => gauge.dec(),
    });
    this.h2pools.set(id, pool);
    if (mtls) this.mtlsIdsOf(address).add(id);
    return pool;
  }

  /** One mTLS connection to an endpoint (the HTTP/1.1 bridge of HTTP/2 requests); may throw a MeshError. */
  mtlsSocket(key: { readonly host: string; readonly port: number }, service: string): Socket {
    return dialMtls(this.identity, { host: key.host, port: key.port, service, alpn: ALPN_HTTP1 }, { mark: this.config.transparent.redirect.proxyMark });
  }

  /** Closes the pools of addresses that left the registry (exchanges on them still complete). */
  drop(addresses: Iterable<string>): void {
    for (const address of addresses) {
      for (const id of this.mtlsIds.get(address) ?? []) {
        this.pools.get(id)?.close(false);
        this.pools.delete(id);
        this.h2pools.get(id)?.close(false);
        this.h2pools.delete(id);
      }
      this.mtlsIds.delete(address);
      const id = address;
      const h2 = this.h2pools.get(id);
      if (h2 !== undefined && !this.egressH2.has(id)) {
        this.h2pools.delete(id);
        h2.close(false);
      }
      const pool = this.pools.get(id);
      if (pool === undefined || this.egress.has(id)) continue;
      this.pools.delete(id);
      pool.close(false);
    }
  }

  private evictOneEgress(): void {
    const first = this.egress.values().next();
    if (first.done === true) return;
    const pool = this.pools.get(first.value);
    this.pools.delete(first.value);
    this.egress.delete(first.value);
    pool?.close(false);
  }

  closeAll(force: boolean): void {
    for (const p of this.pools.values()) p.close(force);
    this.pools.clear();
    for (const p of this.h2pools.values()) p.close(force);
    this.h2pools.clear();
    this.egressH2.clear();
    this.egress.clear();
    this.mtlsIds.clear();
  }
}
