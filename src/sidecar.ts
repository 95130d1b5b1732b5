// A running sidecar: builds the context every stage shares, binds the three listeners and
// drains gracefully. `dreammesh run` and the tests both start sidecars through here.
import { networkInterfaces } from 'node:os';
import type { Server as NetServer } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import type { MeshConfig } from './config/schema.js';
import type { Registry } from './registry/registry.js';
import type { ListenAddress } from './core/address.js';
import type { SidecarContext } from './core/sidecar-context.js';
import { MeshError } from './core/errors.js';
import { createLogger, createAccessLogger } from './core/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { AccessLog } from './telemetry/access-log.js';
import { newViaPseudonym } from './telemetry/request-headers.js';
import { createRegistry } from './registry/create-registry.js';
import { ClusterManager } from './upstream/cluster-manager.js';
import { decideEgress } from './routing/egress.js';
import { originalDstAvailable, originalDstLoadError } from './steering/original-dst.js';
import { FailOpenRules } from './steering/fail-open.js';
import { OutboundListener } from './listeners/outbound-listener.js';
import { createInboundListener } from './listeners/inbound-listener.js';
import { DownstreamConnection } from './http1/downstream-connection.js';
import type { HttpEngine, HttpRouter } from './http1/engine.js';
import type { Entry } from './pipeline/request-context.js';
import { OutboundRouter } from './routing/outbound-router.js';
import { InboundRouter } from './routing/inbound-router.js';
import { handleConnect } from './steering/connect-tunnel.js';
import { createAdminServer } from './listeners/admin-listener.js';
import { listen, describeBound } from './listeners/listen.js';
import { formatHostPort } from './core/address.js';

export interface BoundListeners {
  readonly outbound: ListenAddress;
  readonly inbound: ListenAddress;
  readonly admin: ListenAddress;
}

export interface SidecarOptions {
  readonly log?: Logger;
  /** Use this registry instead of the one the config describes (tests). */
  readonly registry?: Registry;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', '::']);

export class Sidecar {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly registry: Registry;
  readonly clusters: ClusterManager;
  readonly via = newViaPseudonym();
  private readonly accessLog: AccessLog;
  private readonly inflight = { count: 0 };
  private readonly outboundEngine: HttpEngine;
  private readonly outbound: OutboundListener;
  private readonly inboundEngine: HttpEngine;
  private readonly inbound: NetServer;
  private readonly admin: HttpServer;
  private ready = false;
  private failOpen: FailOpenRules | undefined;
  private draining = false;
  private registered = false;
  private ownPorts: { host: string; port: number }[] = [];
  bound: BoundListeners | undefined;
  readonly context: SidecarContext;

  constructor(
    readonly config: MeshConfig,
    opts: SidecarOptions = {},
  ) {
    this.log = opts.log ?? createLogger(config.logLevel);
    this.metrics = createMetrics();
    this.accessLog = new AccessLog(createAccessLogger(config.accessLog), config.accessLog.sample);
    this.registry = opts.registry ?? createRegistry(config, { log: this.log, metrics: this.metrics });
    this.clusters = new ClusterManager(config, this.metrics, this.log);
    const self = this;
    this.context = {
      config,
      registry: this.registry,
      metrics: this.metrics,
      log: this.log,
      accessLog: this.accessLog,
      resolve: (host, port) => this.clusters.table.resolve(host.toLowerCase(), port),
      pickEndpoint: (service, exclude) => {
        const c = this.clusters.cluster(service);
        if (c === undefined) throw new MeshError('MESH_ERR_NO_HEALTHY_ENDPOINT', `service "${service}" has no endpoints`);
        return c.pick(null, exclude);
      },
      checkEgress: (host, port) => {
        const d = decideEgress(config, host, port);
        if (!d.allowed) throw new MeshError('MESH_ERR_EGRESS_DENIED', d.reason, { details: { destination: formatHostPort(host, port) } });
      },
      isOwnAddress: (host, port) => this.isOwnAddress(host, port),
      via: this.via,
      adoptHttp: (socket, steering) => {
        new DownstreamConnection(socket, steering, this.outboundEngine);
      },
      get draining() {
        return self.draining;
      },
    };
    this.outboundEngine = this.engine(
      'outbound',
      new OutboundRouter({ config, clusters: this.clusters, via: this.via, isOwnAddress: (h, p) => this.isOwnAddress(h, p), checkEgress: (h, p) => this.context.checkEgress(h, p) }),
      (socket, head, rest) => handleConnect(this.context, { url: head.target, via: viaOf(head.lower, head.values) }, socket, rest ?? EMPTY),
    );
    this.outbound = new OutboundListener(this.context);
    this.inboundEngine = this.engine('inbound', new InboundRouter({ config, pools: this.clusters.pools, knownCaller: (name) => this.registry.snapshot().services.has(name) }), null);
    this.inbound = createInboundListener(config, this.inboundEngine, this.metrics, this.log);
    this.admin = createAdminServer({ config, metrics: this.metrics, registry: this.registry, clusters: this.clusters, state: () => ({ ready: this.ready, draining: this.draining }) });
  }

  private engine(listener: Entry, router: HttpRouter, onConnect: HttpEngine['onConnect']): HttpEngine {
    const c = this.config;
    return {
      listener,
      via: this.via,
      limits: { maxHeaderBytes: c.limits.maxHeaderBytes, maxHeaderCount: c.limits.maxHeaderCount, maxUriBytes: c.limits.maxUriBytes },
      responseLimits: RESPONSE_LIMITS,
      timeouts: { requestHeaderMs: c.timeouts.requestHeaderMs, downstreamIdleMs: c.timeouts.downstreamIdleMs, idleMs: c.timeouts.idleMs },
      metrics: this.metrics,
      accessLog: this.accessLog,
      router,
      inflight: this.inflight,
      connections: new Set(),
      isDraining: () => this.draining,
      onConnect,
    };
  }

  async start(): Promise<BoundListeners> {
    try {
      return await this.bind();
    } catch (e) {
      // Nothing half-started stays behind: close whatever did bind.
      await this.stop(0).catch(() => {});
      throw e;
    }
  }

  private async bind(): Promise<BoundListeners> {
    if (this.config.transparent.enabled && !originalDstAvailable()) {
      throw new MeshError('MESH_ERR_NATIVE_MISSING', `transparent.enabled is true but the native original-destination addon is not available (${originalDstLoadError()}; run \`npm rebuild dreammesh\` (needs g++ and python3) or set DREAMMESH_NATIVE_ADDON)`);
    }
    if (this.config.transparent.failOpen) this.failOpen = new FailOpenRules(this.config, this.log);
    const admin = await listen(this.admin, this.config.listeners.admin, 'admin');
    await this.registry.start();
    this.clusters.attach(this.registry);
    const outbound = await listen(this.outbound.server, this.config.listeners.outbound, 'outbound');
    const inbound = await listen(this.inbound, this.config.listeners.inbound, 'inbound');
    this.bound = { outbound, inbound, admin };
    await this.registerSelf(inbound);
    this.ownPorts = [outbound, inbound, admin].flatMap((a) => (a.kind === 'tcp' ? [{ host: a.host, port: a.port }] : []));
    this.failOpen?.install();
    this.ready = true;
    this.log.info({ outbound: describeBound(outbound), inbound: describeBound(inbound), admin: describeBound(admin), services: this.registry.snapshot().services.size }, 'sidecar ready');
    return this.bound;
  }

  /** Announces this instance (config `service` + `instance`) where the registry can (etcd). */
  private async registerSelf(inbound: ListenAddress): Promise<void> {
    const service = this.config.service;
    if (service === undefined || this.registry.register === undefined || this.config.registry.etcd === undefined) return;
    const inst = this.config.instance;
    const address = inst?.address ?? advertisedAddress(inbound);
    await this.registry.register({ service, address, weight: inst?.weight ?? 1, labels: inst?.labels ?? {}, ...(inst?.id !== undefined ? { id: inst.id } : {}) });
    this.registered = true;
  }

  private isOwnAddress(host: string, port: number): boolean {
    for (const l of this.ownPorts) {
      if (l.port !== port) continue;
      if (host === l.host || LOOPBACK_NAMES.has(host)) return true;
      if (l.host === '0.0.0.0' || l.host === '::') {
        for (const addrs of Object.values(networkInterfaces())) if (addrs?.some((a) => a.address === host)) return true;
      }
    }
    return false;
  }

  /** Graceful stop: refuse new work, let in-flight requests finish (bounded), then close. */
  async stop(drainMs = this.config.drainTimeoutMs): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    // failOpen: new connections go direct from now on; the ones already captured drain below.
    this.failOpen?.remove();
    // A start that failed is undone quietly: nothing was serving, so nothing drains.
    if (this.ready) this.log.info({ inflight: this.inflight.count, drainMs }, 'draining');
    if (this.registered) {
      // Withdraw first and keep serving while peers drop this instance, so that nobody is sent
      // to a closed listener; then drain as usual.
      await this.registry.deregister?.();
      await sleep(Math.min(drainMs, this.config.registry.etcd?.withdrawGraceMs ?? 0));
    }
    const closing = [closeServer(this.outbound.server), closeServer(this.inbound)];
    const engines = [this.outboundEngine, this.inboundEngine];
    for (const e of engines) for (const dc of e.connections) dc.drain();
    const deadline = Date.now() + drainMs;
    while (this.inflight.count > 0 && Date.now() < deadline) await sleep(25);
    for (const e of engines) for (const dc of e.connections) dc.destroy();
    this.outbound.destroyAll();
    await Promise.all(closing);
    this.clusters.detach();
    this.clusters.pools.closeAll(this.inflight.count > 0);
    await this.registry.close();
    this.admin.closeAllConnections();
    await closeServer(this.admin);
    this.accessLog.flush();
  }
}

/** A routable address for the inbound listener; 0.0.0.0/:: becomes the first external IPv4. */
export function advertisedAddress(inbound: ListenAddress): string {
  if (inbound.kind !== 'tcp') throw new MeshError('MESH_ERR_CONFIG_INVALID', 'instance.address: required when listeners.inbound is a unix socket (peers need host:port)');
  if (inbound.host !== '0.0.0.0' && inbound.host !== '::') return formatHostPort(inbound.host, inbound.port);
  for (const addrs of Object.values(networkInterfaces())) {
    const a = addrs?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a !== undefined) return formatHostPort(a.address, inbound.port);
  }
  throw new MeshError('MESH_ERR_CONFIG_INVALID', `instance.address: listeners.inbound binds ${inbound.host} and no external interface address was found; set instance.address to a routable host:port`);
}

/** Upstream response heads may be larger than request heads; beyond this they are refused (502). */
const RESPONSE_LIMITS = Object.freeze({ maxHeaderBytes: 65536, maxHeaderCount: 500, maxUriBytes: 0 });
const EMPTY = Buffer.alloc(0);

function viaOf(lower: readonly string[], values: readonly string[]): string | undefined {
  const i = lower.indexOf('via');
  return i === -1 ? undefined : values[i];
}

function closeServer(s: NetServer | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if (!s.listening) return resolve();
    s.close(() => resolve());
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
