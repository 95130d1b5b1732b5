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

export interface InboundRouterDeps {
  readonly config: MeshConfig;
  readonly pools: Pools;
  readonly metrics: Metrics;
}

export class InboundRouter implements HttpRouter {
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
    this.appEndpoint = app.kind === 'unix' ? { address, host: 'localhost', port: 0, weight: 1, labels: {} } : { address, host: app.host, port: app.port, weight: 1, labels: {} };
    this.service = deps.config.service ?? 'app';
    this.policy = { ...policyFor(deps.config, undefined), retryAttempts: 0 };
    this.pending = { count: 0, max: deps.config.limits.maxPendingRequests };
    this.byOriginalPort = deps.config.transparent.enabled && app.kind === 'tcp' && originalDstAvailable();
  }

  route(head: RequestHead, ctx: RequestContext, dc: DownstreamConnection): RoutedRequest {
    ctx.service = this.service;
    // Who calls is known only from the verified mTLS peer; a header the client wrote proves
    // nothing: serialize.ts drops every x-dreammesh-* field, and the caller is added after.
    const caller = callerOf(dc.socket);
    ctx.caller = caller ?? UNAUTHENTICATED;
    const allow = this.deps.config.authz.allow;
    if (allow.length > 0 && !allowsRequest(allow, caller, head.method, head.target)) {
      this.deps.metrics.authzDenied.inc({ caller: ctx.caller });
      throw new MeshError('MESH_ERR_FORBIDDEN', `authz.allow: caller ${caller ?? '(unauthenticated)'} may not ${head.method} ${head.target.slice(0, 200)}`);
    }
    const endpoint = this.endpointFor(dc.socket);
    const app = this.app;
    const pools = this.deps.pools;
    const target: ForwardTarget = {
      service: this.service,
      policy: this.policy,
      budget: undefined,
      pending: this.pending,
      pick: () => ({ endpoint, release: () => {} }),
      pool: (e) => pools.get(app.kind === 'unix' ? { socketPath: app.path } : e, this.service),
      mapError: (e) =>
        e.code === 'MESH_ERR_UPSTREAM_REFUSED' || e.code === 'MESH_ERR_UPSTREAM_CONNECT_TIMEOUT'
          ? new MeshError('MESH_ERR_APP_UNAVAILABLE', `the local app at ${endpoint.address} is not accepting connections`, { cause: e })
          : e,
    };
    return { target, path: head.target, host: head.host ?? 'localhost', extra: caller === undefined ? '' : `x-dreammesh-caller: ${caller}\r\n`, upgrade: forwardsUpgrade(head) };
  }

  private endpointFor(socket: Socket): Endpoint {
    const app = this.app;
    if (!this.byOriginalPort || app.kind !== 'tcp') return this.appEndpoint;
    let e = this.endpoints.get(socket);
    if (e === undefined) {
      const raw = rawSocketOf(socket);
      const dst = originalDestination(raw);
      const local = (socket.localAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
      const redirected = dst !== null && !(dst.host === local && dst.port === socket.localPort);
      e = redirected && dst.port !== app.port ? { address: formatHostPort(app.host, dst.port), host: app.host, port: dst.port, weight: 1, labels: {} } : this.appEndpoint;
      this.endpoints.set(socket, e);
    }
    return e;
  }
}
