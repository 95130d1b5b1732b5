// Routing for the inbound listener: every request goes to the local app, one cluster of one
// endpoint. Captured inbound traffic (transparent mode) goes to the app on the port it was
// sent to, decided once per connection. A down app is a clear 503, not a hang.
import type { Socket } from 'node:net';
import type { MeshConfig } from '../config/schema.js';
import type { Endpoint } from '../registry/registry.js';
import type { Pools } from '../upstream/pools.js';
import type { ForwardTarget } from '../upstream/forward-target.js';
import type { PendingLimit } from '../upstream/endpoint-pool.js';
import type { RequestContext } from '../pipeline/request-context.js';
import type { HttpRouter, RoutedRequest } from '../http1/engine.js';
import type { DownstreamConnection } from '../http1/downstream-connection.js';
import type { RequestHead } from '../http1/head.js';
import { MeshError } from '../core/errors.js';
import { parseListenAddress, formatHostPort, type ListenAddress } from '../core/address.js';
import { originalDestination, originalDstAvailable } from '../steering/original-dst.js';
import { policyFor, type ClusterPolicy } from '../upstream/cluster.js';
import { forwardsUpgrade } from './outbound-router.js';
import type { Metrics } from '../telemetry/metrics.js';
import { callerOf, rawSocketOf, UNAUTHENTICATED } from '../tls/peer-caller.js';
import { allowsRequest } from '../tls/authz.js';
import type { IncomingHttpHeaders } from 'node:http2';
import type { H2Route, H2Router } from '../http2/h2-engine.js';
import { h2Path, type H2ConnectionInfo } from '../http2/h2-target.js';

export interface InboundRouterDeps {
  readonly config: MeshConfig;
  readonly pools: Pools;
  readonly metrics: Metrics;
}

export class InboundRouter implements HttpRouter, H2Router {
  private readonly app: ListenAddress;
  private readonly appEndpoint: Endpoint;
  private readonly service: string;
  private readonly policy: ClusterPolicy;
  private readonly pending: PendingLimit;
  private readonly byOriginalPort: boolean;
  private readonly endpoints = new WeakMap<Socket, Endpoint>();

  constructor(private readonly deps: InboundRouterDeps) {
    const address = deps.config.app;
    const app = address === undefined ? null : parseListenAddress(address);
    if (address === undefined || app === null) throw new MeshError('MESH_ERR_CONFIG_INVALID', `app: "${address ?? ''}" is not host:port or unix:/path`);
    this.app = app;
    // A unix-socket app is spoken to in HTTP/1.1 only (HTTP/2 streams are bridged, h2-call.ts).
    this.appEndpoint = app.kind === 'unix' ? { address, host: 'localhost', port: 0, weight: 1, labels: {}, protocol: 'http1' } : { address, host: app.host, port: app.port, weight: 1, labels: {} };
    this.service = deps.config.service ?? 'app';
    this.policy = { ...policyFor(deps.config, undefined), retryAttempts: 0 };
    this.pending = { count: 0, max: deps.config.limits.maxPendingRequests };
    this.byOriginalPort = deps.config.transparent.enabled && app.kind === 'tcp' && originalDstAvailable();
    const listener = deps.config.listeners.inbound === undefined ? null : parseListenAddress(deps.config.listeners.inbound);
    this.tproxyPort = deps.config.transparent.redirect.inboundMode === 'tproxy' && listener?.kind === 'tcp' ? listener.port : undefined;
  }

  /** inboundMode tproxy: the listener's own port (a connection to any other local port was diverted). */
  private readonly tproxyPort: number | undefined;

  route(head: RequestHead, ctx: RequestContext, dc: DownstreamConnection): RoutedRequest {
    const caller = this.authorize(dc.socket, head.method, head.target, ctx);
    const target = this.targetFor(dc.socket);
    return { target, path: head.target, host: head.host ?? 'localhost', extra: caller === undefined ? '' : `x-dreammesh-caller: ${caller}\r\n`, upgrade: forwardsUpgrade(head) };
  }

  /**
   * One HTTP/2 stream (a gRPC call): the same rules per stream as per HTTP/1 request. The app
   * gets h2c from the shared session pool (a unix-socket app gets HTTP/1.1: h2-call.ts bridges
   * plain requests and refuses gRPC with status 13).
   */
  routeStream(headers: IncomingHttpHeaders, info: H2ConnectionInfo, ctx: RequestContext): H2Route {
    const socket = info.socket;
    if (socket === undefined) throw new MeshError('MESH_ERR_INTERNAL', 'inbound HTTP/2 stream without its connection');
    const path = h2Path(headers, this.deps.config.limits.maxUriBytes);
    const caller = this.authorize(socket, String(headers[':method'] ?? ''), path, ctx);
    const a = headers[':authority'] ?? headers.host;
    return { target: this.targetFor(socket), authority: typeof a === 'string' && a.length > 0 ? a : 'localhost', path, caller };
  }

  /**
   * Who calls is known only from the verified mTLS peer; a header the client wrote proves
   * nothing (every x-dreammesh-* field is dropped, and the caller is added after). Returns the
   * caller; throws MESH_ERR_FORBIDDEN when authz.allow has no rule for this call.
   */
  private authorize(socket: Socket, method: string, target: string, ctx: RequestContext): string | undefined {
    ctx.service = this.service;
    const caller = callerOf(socket);
    ctx.caller = caller ?? UNAUTHENTICATED;
    const allow = this.deps.config.authz.allow;
    if (allow.length > 0 && !allowsRequest(allow, caller, method, target)) {
      this.deps.metrics.authzDenied.inc({ caller: ctx.caller });
      throw new MeshError('MESH_ERR_FORBIDDEN', `authz.allow: caller ${caller ?? '(unauthenticated)'} may not ${method} ${target.slice(0, 200)}`);
    }
    return caller;
  }

  private targetFor(socket: Socket): ForwardTarget {
    const endpoint = this.endpointFor(socket);
    const app = this.app;
    const pools = this.deps.pools;
    const source = this.originalSource(socket);
    return {
      service: this.service,
      policy: this.policy,
      budget: undefined,
      pending: this.pending,
      pick: () => ({ endpoint, release: () => {} }),
      pool: (e) => pools.get(app.kind === 'unix' ? { socketPath: app.path } : source !== undefined ? { host: e.host, port: e.port, source } : e, this.service),
      // The app over h2c (a diverted connection's original source is not bound: HTTP/1 only).
      h2Pool: (e) => pools.h2(e, this.service),
      mapError: (e) =>
        e.code === 'MESH_ERR_UPSTREAM_REFUSED' || e.code === 'MESH_ERR_UPSTREAM_CONNECT_TIMEOUT'
          ? new MeshError('MESH_ERR_APP_UNAVAILABLE', `the local app at ${endpoint.address} is not accepting connections`, { cause: e })
          : e,
    };
  }

  /**
   * tproxyOriginalSource: a diverted connection goes to the app at its original destination
   * address, from the client's own address (the app's socket sees the real client).
   */
  private originalSource(socket: Socket): string | undefined {
    return this.sourced.has(socket) ? unmapped(rawSocketOf(socket).remoteAddress) : undefined;
  }

  /** Downstream sockets whose app connection goes from the client's address. */
  private readonly sourced = new WeakSet<Socket>();

  private endpointFor(socket: Socket): Endpoint {
    const app = this.app;
    if (!this.byOriginalPort || app.kind !== 'tcp') return this.appEndpoint;
    let e = this.endpoints.get(socket);
    if (e === undefined) {
      // Under inbound mTLS the socket is the TLS layer: addresses come from the TCP socket below.
      const raw = rawSocketOf(socket);
      // TPROXY does no NAT: the accepted socket's local address is the original destination.
      // A connection to the listener's own port was not diverted (or was REDIRECTed by rules
      // installed in redirect mode: conntrack still knows its destination).
      const diverted = this.tproxyPort !== undefined && raw.localPort !== this.tproxyPort;
      const dst = diverted ? { host: '', port: raw.localPort ?? 0 } : originalDestination(raw);
      const local = (raw.localAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
      const redirected = dst !== null && !(dst.host === local && dst.port === raw.localPort);
      if (diverted && this.deps.config.transparent.redirect.tproxyOriginalSource) {
        this.sourced.add(socket);
        // The app at the address the client connected to (the original destination itself).
        e = { address: formatHostPort(local, raw.localPort ?? 0), host: local, port: raw.localPort ?? 0, weight: 1, labels: {} };
      } else e = redirected && dst.port !== app.port ? { address: formatHostPort(app.host, dst.port), host: app.host, port: dst.port, weight: 1, labels: {} } : this.appEndpoint;
      this.endpoints.set(socket, e);
    }
    return e;
  }
}

function unmapped(a: string | undefined): string | undefined {
  return a?.replace(/^::ffff:(?=\d+\.)/, '');
}
