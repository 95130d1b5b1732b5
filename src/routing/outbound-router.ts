// Routing for the outbound listener, the same for every way in: steering output (explicit
// Host, absolute-form URI, captured original destination) → loop guard → service (route
// rules, weighted split) or an external host under the egress policy → a ForwardTarget.
import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { MeshConfig } from '../config/schema.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { ForwardTarget } from '../upstream/forward-target.js';
import type { PendingLimit } from '../upstream/endpoint-pool.js';
import type { RequestContext } from '../pipeline/request-context.js';
import type { HttpRouter, RoutedRequest } from '../http1/engine.js';
import type { DownstreamConnection } from '../http1/downstream-connection.js';
import type { RequestHead } from '../http1/head.js';
import { wantsUpgrade } from '../http1/framing.js';
import { MeshError } from '../core/errors.js';
import { formatHostPort } from '../core/address.js';
import { viaShowsLoop } from '../telemetry/request-headers.js';
import { requestTarget, type RequestTarget } from '../steering/request-target.js';
import { policyFor } from '../upstream/cluster.js';
import { canonicalHost } from '../core/canonical-address.js';
import type { EndpointLease } from '../core/sidecar-context.js';
import type { H2Route, H2Router } from '../http2/h2-engine.js';
import { h2Target, type H2ConnectionInfo } from '../http2/h2-target.js';

/** The `service` label of every request to a destination outside the mesh. */
export const EGRESS_SERVICE = 'egress';

export interface OutboundRouterDeps {
  readonly config: MeshConfig;
  readonly clusters: ClusterManager;
  readonly via: string;
  /** `exceptInbound`: the own inbound listener does not count (service endpoints). */
  isOwnAddress(host: string, port: number, exceptInbound?: boolean): boolean;
  checkEgress(host: string, port: number): void;
}

function looksLikeServiceName(host: string, suffixes: readonly string[]): boolean {
  if (!host.includes('.')) return isIP(host) === 0;
  return suffixes.some((s) => host.endsWith('.' + s));
}

/** WebSocket and other upgrades are forwarded; h2c is not (the upstream gets plain HTTP/1.1). */
export function forwardsUpgrade(head: RequestHead): boolean {
  return wantsUpgrade(head) && !/(^|[\s,])h2c($|[\s,])/i.test(head.upgrade!);
}

/** Route rules read request headers by lower-case name. */
export function headerObject(head: RequestHead): IncomingHttpHeaders {
  const o: Record<string, string> = {};
  for (let k = 0; k < head.lower.length; k++) {
    const n = head.lower[k]!;
    o[n] = o[n] === undefined ? head.values[k]! : `${o[n]}, ${head.values[k]!}`;
  }
  return o;
}

export class OutboundRouter implements HttpRouter, H2Router {
  private readonly egressPending: PendingLimit;

  constructor(private readonly deps: OutboundRouterDeps) {
    this.egressPending = { count: 0, max: deps.config.limits.maxPendingRequests };
  }

  /**
   * A registry entry (etcd, a file) may name our outbound or admin listener: that is a loop
   * too. Our inbound listener is a fair endpoint: this instance of the service, via its app.
   */
  private notOwn(service: string, lease: EndpointLease): EndpointLease {
    const e = lease.endpoint;
    if (!this.deps.isOwnAddress(canonicalHost(e.host.toLowerCase()) ?? e.host, e.port, true)) return lease;
    lease.release(true);
    throw new MeshError('MESH_ERR_LOOP', `service "${service}" has an endpoint at ${e.address}, this sidecar's own listener`);
  }

  route(head: RequestHead, ctx: RequestContext, dc: DownstreamConnection): RoutedRequest {
    const t = requestTarget(head.target, head.host, dc.steering);
    const via = head.lower.indexOf('via');
    const target = this.decide(t, via === -1 ? undefined : head.values[via], () => headerObject(head), ctx);
    return { target, path: t.path, host: t.hostHeader, extra: '', upgrade: forwardsUpgrade(head) };
  }

  /** One HTTP/2 stream: steered by :authority (h2-target.ts), then the same decision. */
  routeStream(headers: IncomingHttpHeaders, info: H2ConnectionInfo, ctx: RequestContext): H2Route {
    const t = h2Target(headers, info, this.deps.config.limits.maxUriBytes);
    const via = headers.via;
    const target = this.decide(t, Array.isArray(via) ? via.join(', ') : via, () => headers, ctx);
    return { target, authority: t.hostHeader, path: t.path };
  }

  /**
   * The routing decision shared by every protocol (HTTP/1 heads, HTTP/2 streams): loop guard,
   * service or egress, route rules and split. `headers` is only read when the service has rules.
   */
  decide(t: RequestTarget, viaHeader: string | undefined, headers: () => IncomingHttpHeaders, ctx: RequestContext): ForwardTarget {
    const { config, clusters } = this.deps;
    ctx.mode = t.steering.mode;
    ctx.authority = t.hostHeader;
    ctx.path = t.path;
    const { host, port } = t.authority;
    if (viaHeader !== undefined && viaShowsLoop(viaHeader, this.deps.via)) throw new MeshError('MESH_ERR_LOOP', 'this request already passed through this sidecar (Via)');
    if (this.deps.isOwnAddress(host, port ?? 80)) throw new MeshError('MESH_ERR_LOOP', `${t.hostHeader} is this sidecar's own listener`);
    const table = clusters.table;
    let dest = table.resolve(host, port);
    if (dest.kind === 'external' && t.fallback !== undefined) {
      const byDst = table.resolve(t.fallback.host, t.fallback.port);
      if (byDst.kind === 'service') dest = byDst;
    }
    let target: ForwardTarget;
    if (dest.kind === 'service') {
      const service = dest.service;
      ctx.service = service;
      const rules = table.policy(service)?.routes;
      const decision = table.route(service, t.path, rules !== undefined && rules.length > 0 ? headers() : {});
      ctx.route = decision.route;
      const cluster = clusters.cluster(service);
      if (cluster === undefined) throw new MeshError('MESH_ERR_NO_HEALTHY_ENDPOINT', `service "${service}" has no endpoints`);
      const pools = clusters.pools;
      target = {
        service,
        policy: cluster.policy,
        budget: cluster.budget,
        pending: cluster.pending,
        pick: (ex) => this.notOwn(service, cluster.pick(decision.filter, ex)),
        pool: (ep) => pools.get(ep, service),
        h2Pool: (ep) => pools.h2(ep, service),
        h1Dial: (ep) => (ep.mtls === true ? () => pools.mtlsSocket(ep, service) : undefined),
      };
    } else {
      try {
        this.deps.checkEgress(dest.host, dest.port);
      } catch (e) {
        // Explicit mode's contract is "name a service": an unknown service-like name (no dot,
        // or a mesh domain suffix) is a 404 that lists them; other hosts are egress (403).
        if (ctx.mode === 'explicit' && looksLikeServiceName(host, config.domainSuffixes)) {
          const known = table.serviceNames();
          throw new MeshError('MESH_ERR_NO_ROUTE', `no service named "${host}"`, { details: { known: known.slice(0, 50), knownCount: known.length } });
        }
        throw e;
      }
      // One label value for every external host keeps metric cardinality bounded; the access
      // log keeps the authority.
      ctx.service = EGRESS_SERVICE;
      const ep = { address: formatHostPort(dest.host, dest.port), host: dest.host, port: dest.port, weight: 1, labels: {} };
      const pools = clusters.pools;
      target = {
        service: EGRESS_SERVICE,
        policy: policyFor(config, undefined),
        budget: undefined,
        pending: this.egressPending,
        pick: () => ({ endpoint: ep, release: () => {} }),
        pool: () => pools.get(ep, EGRESS_SERVICE),
        h2Pool: () => pools.h2(ep, EGRESS_SERVICE),
      };
    }
    return target;
  }
}
