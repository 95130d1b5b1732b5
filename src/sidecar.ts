// A running sidecar: builds the context every stage shares, binds its listeners (inbound only
// when there is an app), applies reloaded configs and drains gracefully. `dreammesh run` and
// the tests both start sidecars through here.
import type { Socket } from 'node:net';
import { Agent as HttpAgent, type Server as HttpServer } from 'node:http';
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
import { createRegistry, inlineRecords, inlineServices } from './registry/create-registry.js';
import type { MemoryRegistry } from './registry/memory-registry.js';
import { ClusterManager } from './upstream/cluster-manager.js';
import { decideEgress } from './routing/egress.js';
import { OwnListeners } from './routing/own-listeners.js';
import { originalDstAvailable, originalDstLoadError } from './steering/original-dst.js';
import { checkSocketOptions } from './steering/socket-options.js';
import { CaptureLog } from './steering/capture-log.js';
import { FailOpenRules } from './steering/fail-open.js';
import { TrackedListener } from './listeners/tracked-listener.js';
import { acceptOutbound } from './listeners/outbound-listener.js';
import { DownstreamConnection } from './http1/downstream-connection.js';
import type { HttpEngine } from './http1/engine.js';
import { OutboundRouter } from './routing/outbound-router.js';
import { InboundRouter } from './routing/inbound-router.js';
import { handleConnect } from './steering/connect-tunnel.js';
import { createAdminServer, type ConfigInForce } from './listeners/admin-listener.js';
import { listen, describeBound } from './listeners/listen.js';
import { formatHostPort } from './core/address.js';
import { restartOnly, sameJson } from './config/reload-plan.js';
import { MeshDns } from './dns/mesh-dns.js';
import type { HostPort } from './core/sidecar-context.js';
import { IdentityStore } from './tls/identity-store.js';
import { acceptInboundMtls } from './tls/inbound-tls.js';
import { relayToApp } from './tls/inbound-tunnel.js';
import { H2Downstream } from './http2/h2-downstream.js';
import { httpEngine, h2Engine, NO_APP, NO_APP_H2, type LiveState } from './listeners/engines.js';
import { advertisedAddress } from './core/advertised-address.js';

export interface BoundListeners {
  readonly outbound: ListenAddress;
  /** Absent when the config names no app. */
  readonly inbound: ListenAddress | undefined;
  readonly admin: ListenAddress;
}

export interface SidecarOptions {
  readonly log?: Logger;
  /** Use this registry instead of the one the config describes (tests). */
  readonly registry?: Registry;
  /** The file the config came from (shown in /config). */
  readonly source?: string;
}

/** What a reload changed, for the log and for tests. */
export interface ReloadOutcome {
  readonly version: number;
  /** Sections that differ but only take effect at restart (kept as they were). */
  readonly keptUntilRestart: readonly string[];
}

export class Sidecar {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly registry: Registry;
  readonly clusters: ClusterManager;
  readonly via = newViaPseudonym();
  private cfg: MeshConfig;
  private version = 1;
  private loadedAt = new Date();
  private readonly source: string | undefined;
  private accessLog: AccessLog;
  private readonly inline: MemoryRegistry | undefined;
  private readonly inflight = { count: 0 };
  private outboundRouter: OutboundRouter;
  private inboundRouter: InboundRouter | undefined;
  private readonly outboundEngine: HttpEngine;
  private readonly inboundEngine: HttpEngine;
  private readonly h2: H2Downstream;
  /** HTTP/2 on the inbound listener (ALPN h2 under mTLS, or prior-knowledge h2c). */
  private readonly h2In: H2Downstream;
  /** HTTP/2 requests to endpoints that speak only HTTP/1.1 (protocol: http1). */
  private readonly h1Agent = new HttpAgent({ keepAlive: true, maxSockets: 128 });
  private readonly outbound: TrackedListener;
  private readonly inbound: TrackedListener;
  private admin: HttpServer;
  private adminAddress: string;
  private readonly own = new OwnListeners();
  private ready = false;
  private failOpen: FailOpenRules | undefined;
  private draining = false;
  private drainCut = false;
  private stopped: Promise<void> | undefined;
  private registered = false;
  /** The mTLS identity, when mtls files are configured (read at construction, then watched). */
  readonly identity: IdentityStore | undefined;
  bound: BoundListeners | undefined;
  readonly context: SidecarContext;
  /** dns.enabled: the DNS server and the virtual IP map. */
  readonly dns: MeshDns | undefined;
  /** Where the DNS server listens (UDP and TCP), once started. */
  dnsBound: HostPort | undefined;
  /** Recent captured outbound connections, for `redirect verify` (admin /verify/capture). */
  private readonly captures = new CaptureLog();

  constructor(config: MeshConfig, opts: SidecarOptions = {}) {
    this.cfg = config;
    this.source = opts.source;
    this.log = opts.log ?? createLogger(config.logLevel);
    this.metrics = createMetrics();
    this.accessLog = new AccessLog(createAccessLogger(config.accessLog), config.accessLog.sample);
    if (opts.registry === undefined) this.inline = inlineServices(config);
    this.registry = opts.registry ?? createRegistry(config, { log: this.log, metrics: this.metrics }, this.inline);
    this.clusters = new ClusterManager(config, this.metrics, this.log, (port) => this.own.lookupFor(port));
    this.dns = config.dns.enabled ? new MeshDns(config, this.registry, this.metrics, this.log) : undefined;
    if (this.dns !== undefined) {
      const dns = this.dns;
      this.clusters.virtualIps = (ip) => dns.serviceForVip(ip);
    }
    this.identity = IdentityStore.fromConfig(config.mtls, this.metrics, this.log);
    this.clusters.pools.identity = this.identity;
    // Getters of the shared context read the current state (a reload replaces config and access log).
    const current = {
      config: (): MeshConfig => this.cfg,
      accessLog: (): AccessLog => this.accessLog,
      draining: (): boolean => this.draining,
      drainCut: (): boolean => this.drainCut,
    };
    this.context = {
      get config() {
        return current.config();
      },
      registry: this.registry,
      metrics: this.metrics,
      log: this.log,
      get accessLog() {
        return current.accessLog();
      },
      resolve: (host, port) => this.clusters.table.resolve(host.toLowerCase(), port),
      pickEndpoint: (service, exclude) => {
        const c = this.clusters.cluster(service);
        if (c === undefined) throw new MeshError('MESH_ERR_NO_HEALTHY_ENDPOINT', `service "${service}" has no endpoints`);
        return c.pick(null, exclude);
      },
      checkEgress: (host, port) => {
        const d = decideEgress(this.cfg, host, port);
        if (!d.allowed) throw new MeshError('MESH_ERR_EGRESS_DENIED', d.reason, { details: { destination: formatHostPort(host, port) } });
      },
      isOwnAddress: (host, port) => this.own.has(host, port),
      via: this.via,
      identity: this.identity,
      adoptHttp: (socket, steering) => {
        new DownstreamConnection(socket, steering, this.outboundEngine);
      },
      adoptHttp2: (socket, steering, connectTarget) => {
        this.h2.adopt(socket, { steering, remoteAddress: socket.remoteAddress, ...(connectTarget !== undefined ? { connectTarget } : {}) });
      },
      get draining() {
        return current.draining();
      },
      get drainCut() {
        return current.drainCut();
      },
    };
    this.outboundRouter = this.newOutboundRouter();
    this.inboundRouter = this.newInboundRouter();
    const live: LiveState = { ...current, via: this.via, metrics: this.metrics, inflight: this.inflight };
    this.outboundEngine = httpEngine(
      live,
      'outbound',
      () => this.outboundRouter,
      (socket, head, rest) => handleConnect(this.context, { url: head.target, via: viaOf(head.lower, head.values) }, socket, rest ?? EMPTY),
      (socket, steering) => this.context.adoptHttp2(socket, steering),
    );
    this.inboundEngine = httpEngine(
      live,
      'inbound',
      () => this.inboundRouter ?? NO_APP,
      null,
      (socket) => this.adoptInboundHttp2(socket),
    );
    this.h2 = new H2Downstream(
      h2Engine(live, 'outbound', () => this.outboundRouter, this.h1Agent),
      this.log,
    );
    this.h2In = new H2Downstream(
      h2Engine(live, 'inbound', () => this.inboundRouter ?? NO_APP_H2, this.h1Agent),
      this.log,
    );
    const listenerOpts = { metrics: this.metrics, log: this.log, maxConnections: () => this.cfg.limits.maxDownstreamConnections };
    this.outbound = new TrackedListener({ ...listenerOpts, name: 'outbound', onConnection: (s) => acceptOutbound(this.context, s, this.captures) });
    this.inbound = new TrackedListener({
      ...listenerOpts,
      name: 'inbound',
      transparent: () => this.cfg.transparent.redirect.inboundMode === 'tproxy',
      onConnection: (s) => this.acceptInbound(s),
    });
    this.admin = this.newAdminServer();
    this.adminAddress = config.listeners.admin;
  }

  /** The config in force: the start-up one, or the last reload that was applied. */
  get config(): MeshConfig {
    return this.cfg;
  }

  current(): ConfigInForce {
    return { config: this.cfg, version: this.version, loadedAt: this.loadedAt, source: this.source };
  }

  /** mTLS off: plaintext HTTP. On: the first byte tells TLS from plaintext (inbound-tls.ts). */
  private acceptInbound(socket: Socket): void {
    const mtls = this.cfg.mtls;
    if (mtls.mode === 'off' || this.identity === undefined) {
      new DownstreamConnection(socket, { mode: 'explicit' }, this.inboundEngine);
      return;
    }
    acceptInboundMtls(
      {
        mtls,
        store: this.identity,
        metrics: this.metrics,
        log: this.log,
        firstByteMs: this.cfg.timeouts.downstreamIdleMs,
        onHttp: (s) => void new DownstreamConnection(s, { mode: 'explicit' }, this.inboundEngine),
        onHttp2: (s) => this.adoptInboundHttp2(s),
        onTunnel: (s, caller) => void relayToApp({ config: this.cfg, metrics: this.metrics, log: this.log }, s, caller),
      },
      socket,
    );
  }

  /** The inbound HTTP/2 path keeps the socket: it knows the verified caller of every stream. */
  private adoptInboundHttp2(socket: Socket): void {
    this.h2In.adopt(socket, { steering: { mode: 'explicit' }, remoteAddress: socket.remoteAddress, socket });
  }

  private newOutboundRouter(): OutboundRouter {
    return new OutboundRouter({
      config: this.cfg,
      clusters: this.clusters,
      via: this.via,
      isOwnAddress: (h, p, exceptInbound) => this.own.has(h, p, exceptInbound),
      checkEgress: (h, p) => this.context.checkEgress(h, p),
    });
  }

  private newInboundRouter(): InboundRouter | undefined {
    return this.cfg.app === undefined ? undefined : new InboundRouter({ config: this.cfg, pools: this.clusters.pools, metrics: this.metrics });
  }

  private newAdminServer(): HttpServer {
    return createAdminServer({
      current: () => this.current(),
      metrics: this.metrics,
      registry: this.registry,
      clusters: this.clusters,
      state: () => ({ ready: this.ready, draining: this.draining }),
      captures: this.captures,
      identity: this.identity,
    });
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
    const config = this.cfg;
    if (config.transparent.enabled && !originalDstAvailable()) {
      throw new MeshError(
        'MESH_ERR_NATIVE_MISSING',
        `transparent.enabled is true but the native original-destination addon is not available (${originalDstLoadError()}; run \`npm rebuild dreammesh\` (needs g++ and python3) or set DREAMMESH_NATIVE_ADDON)`,
      );
    }
    checkSocketOptions(config);
    if (config.transparent.failOpen) this.failOpen = new FailOpenRules(config, this.log);
    const admin = await listen(this.admin, config.listeners.admin, 'admin');
    await this.registry.start();
    this.clusters.attach(this.registry);
    if (this.dns !== undefined) this.dnsBound = await this.dns.start();
    const outbound = await this.outbound.bind(config.listeners.outbound);
    const inbound = config.listeners.inbound === undefined ? undefined : await this.inbound.bind(config.listeners.inbound);
    this.bound = { outbound, inbound, admin };
    this.own.set(this.bound);
    this.identity?.start();
    await this.registerSelf(inbound);
    this.failOpen?.install();
    this.ready = true;
    this.log.info(
      { outbound: describeBound(outbound), inbound: inbound === undefined ? 'off (no app)' : describeBound(inbound), admin: describeBound(admin), services: this.registry.snapshot().services.size },
      'sidecar ready',
    );
    return this.bound;
  }

  /** Announces this instance (config `service` + `instance`) where the registry can (etcd). */
  private async registerSelf(inbound: ListenAddress | undefined): Promise<void> {
    const service = this.cfg.service;
    if (service === undefined || this.registry.register === undefined || this.cfg.registry.etcd === undefined) return;
    if (inbound === undefined) {
      this.log.info({ service }, 'not registering in etcd: there is no app, so no inbound listener for peers to reach');
      return;
    }
    const inst = this.cfg.instance;
    const address = inst?.address ?? advertisedAddress(inbound);
    const mtls = this.cfg.mtls.mode !== 'off';
    await this.registry.register({ service, address, weight: inst?.weight ?? 1, labels: inst?.labels ?? {}, ...(inst?.id !== undefined ? { id: inst.id } : {}), ...(mtls ? { mtls } : {}) });
    this.registered = true;
  }

  /**
   * Puts a validated config in force. Listeners whose address changed are bound anew first
   * (a failure there leaves everything as it was); established connections stay where they
   * are and finish under the config they started with. Sections that only a restart can
   * change are kept as they were and named in the outcome.
   */
  async reload(proposed: MeshConfig): Promise<ReloadOutcome> {
    if (this.draining || !this.ready) throw new MeshError('MESH_ERR_DRAINING', 'the sidecar is not running');
    const prev = this.cfg;
    const { config: next, kept } = restartOnly(prev, proposed, { registered: this.registered });
    await this.rebindListeners(prev, next);
    this.cfg = next;
    this.version += 1;
    this.loadedAt = new Date();
    this.log.level = next.logLevel;
    if (!sameJson(prev.accessLog, next.accessLog)) {
      const old = this.accessLog;
      this.accessLog = new AccessLog(createAccessLogger(next.accessLog), next.accessLog.sample);
      old.close();
    }
    this.clusters.reconfigure(next);
    this.dns?.setDomainSuffixes(next.domainSuffixes);
    if (this.inline !== undefined && !sameJson(prev.services, next.services)) this.inline.replace(inlineRecords(next));
    this.outboundRouter = this.newOutboundRouter();
    this.inboundRouter = this.newInboundRouter();
    this.outbound.applyLimit();
    this.inbound.applyLimit();
    this.log.info({ version: this.version, keptUntilRestart: kept }, 'config reloaded');
    return { version: this.version, keptUntilRestart: kept };
  }

  private async rebindListeners(prev: MeshConfig, next: MeshConfig): Promise<void> {
    const moved: (() => Promise<unknown>)[] = [];
    try {
      if (next.listeners.outbound !== prev.listeners.outbound) {
        await this.outbound.bind(next.listeners.outbound);
        moved.push(() => this.outbound.bind(prev.listeners.outbound));
      }
      if (next.listeners.inbound !== prev.listeners.inbound) {
        if (next.listeners.inbound === undefined) this.inbound.close();
        else {
          await this.inbound.bind(next.listeners.inbound);
          moved.push(async () => (prev.listeners.inbound === undefined ? this.inbound.close() : this.inbound.bind(prev.listeners.inbound)));
        }
      }
      if (next.listeners.admin !== this.adminAddress) {
        const server = this.newAdminServer();
        await listen(server, next.listeners.admin, 'admin');
        const old = this.admin;
        this.admin = server;
        this.adminAddress = next.listeners.admin;
        old.close();
        old.closeIdleConnections();
      }
    } catch (e) {
      // Back to where we were: a reload applies whole or not at all.
      for (const undo of moved.reverse()) await undo().catch(() => {});
      throw e;
    }
    const admin = this.admin.address();
    const adminBound: ListenAddress = admin === null || typeof admin === 'string' ? this.bound!.admin : { kind: 'tcp', host: admin.address, port: admin.port };
    this.bound = { outbound: this.outbound.bound!, inbound: this.inbound.bound, admin: adminBound };
    this.own.set(this.bound);
  }

  /**
   * Graceful stop: refuse new work, let in-flight requests and tunnels (CONNECT, opaque,
   * upgraded) finish until the deadline, then cut what is left (logged MESH_ERR_DRAIN_TIMEOUT).
   */
  stop(drainMs = this.cfg.drainTimeoutMs): Promise<void> {
    this.stopped ??= this.drainAndClose(drainMs);
    return this.stopped;
  }

  private async drainAndClose(drainMs: number): Promise<void> {
    this.draining = true;
    // failOpen: new connections go direct from now on; the ones already captured drain below.
    this.failOpen?.remove();
    // A start that failed is undone quietly: nothing was serving, so nothing drains.
    if (this.ready) this.log.info({ inflight: this.inflight.count, connections: this.openConnections(), drainMs }, 'draining');
    const deadline = Date.now() + drainMs;
    if (this.registered) {
      // Withdraw first and keep serving while peers drop this instance, so that nobody is sent
      // to a closed listener; then drain as usual.
      await this.registry.deregister?.();
      await sleep(Math.min(drainMs, this.cfg.registry.etcd?.withdrawGraceMs ?? 0));
    }
    this.outbound.close();
    this.inbound.close();
    const engines = [this.outboundEngine, this.inboundEngine];
    for (const e of engines) for (const dc of e.connections) dc.drain();
    this.h2.drain();
    this.h2In.drain();
    while ((this.inflight.count > 0 || this.openConnections() > 0) && Date.now() < deadline) await sleep(25);
    if (this.inflight.count > 0 || this.openConnections() > 0) this.cutAtDeadline(drainMs);
    await this.dns?.close();
    this.clusters.detach();
    this.clusters.pools.closeAll(true);
    this.identity?.stop();
    this.h1Agent.destroy();
    await this.registry.close();
    this.admin.closeAllConnections();
    await closeServer(this.admin);
    this.accessLog.flush();
  }

  private openConnections(): number {
    return this.outbound.connections + this.inbound.connections;
  }

  /** Downstreams first, so that what is cut is reported as the drain's doing, not an upstream reset. */
  private cutAtDeadline(drainMs: number): void {
    const http = new Set<Socket>();
    for (const e of [this.outboundEngine, this.inboundEngine]) for (const dc of e.connections) http.add(dc.socket);
    const tunnels: string[] = [];
    for (const l of [this.outbound, this.inbound]) {
      for (const s of l.openSockets()) if (!http.has(s)) tunnels.push(`${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`);
    }
    this.drainCut = true;
    this.log.warn(
      { code: 'MESH_ERR_DRAIN_TIMEOUT', drainMs, requests: this.inflight.count, httpConnections: http.size, tunnels: tunnels.length, downstreams: tunnels.slice(0, 20) },
      'drain deadline reached: cutting what is still open',
    );
    this.outbound.destroyAll();
    this.inbound.destroyAll();
  }
}

const EMPTY = Buffer.alloc(0);

function viaOf(lower: readonly string[], values: readonly string[]): string | undefined {
  const i = lower.indexOf('via');
  return i === -1 ? undefined : values[i];
}

function closeServer(s: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if (!s.listening) return resolve();
    s.close(() => resolve());
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
