// The outbound HTTP path shared by every mode: steering output → route → cluster → endpoint.
// Errors are values until the end of this function, where sendError turns them into answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Steering } from '../core/sidecar-context.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { MeshConfig } from '../config/schema.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { sendError } from '../core/error-response.js';
import { upstreamRequestHeaders, viaShowsLoop } from '../telemetry/request-headers.js';
import { forwardHttp, type ForwardTarget } from '../upstream/forward-http.js';
import { policyFor } from '../upstream/cluster.js';
import { requestTarget } from './request-target.js';
import { formatHostPort } from '../core/address.js';

export interface OutboundHttpDeps {
  readonly config: MeshConfig;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
  readonly clusters: ClusterManager;
  readonly via: string;
  /** Steering decided when the connection was accepted (transparent), if any. */
  connectionSteering(socket: Socket): Steering | undefined;
  isOwnAddress(host: string, port: number): boolean;
  checkEgress(host: string, port: number): void;
  readonly inflight: { count: number };
  isDraining(): boolean;
}

const EXPLICIT: Steering = Object.freeze({ mode: 'explicit' });
/** The `service` label of every request to a destination outside the mesh. */
export const EGRESS_SERVICE = 'egress';

function looksLikeServiceName(host: string, suffixes: readonly string[]): boolean {
  if (!host.includes('.')) return isIP(host) === 0;
  return suffixes.some((s) => host.endsWith('.' + s));
}

export function createOutboundHandler(deps: OutboundHttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(deps, req, res).catch((e: unknown) => {
      // Only reachable through a bug; still an answer, not a crash.
      sendError(res, toMeshError(e));
    });
  };
}

async function handle(deps: OutboundHttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  deps.inflight.count += 1;
  if (deps.isDraining()) res.setHeader('connection', 'close');
  const connection = deps.connectionSteering(req.socket) ?? EXPLICIT;
  let mode: string = connection.mode;
  let service = '-';
  let route: string | undefined;
  let endpoint: string | undefined;
  let error: MeshError | undefined;
  let authority = req.headers.host ?? '';
  let attempts: number | undefined;
  let requestId: string | undefined;
  try {
    const t = requestTarget(req, connection, deps.config.limits.maxUriBytes);
    mode = t.steering.mode;
    authority = t.hostHeader;
    const { host, port } = t.authority;
    if (viaShowsLoop(req.headers.via, deps.via)) throw new MeshError('MESH_ERR_LOOP', 'this request already passed through this sidecar (Via)');
    if (deps.isOwnAddress(host, port ?? 80)) {
      throw new MeshError('MESH_ERR_LOOP', `${t.hostHeader} is this sidecar's own listener`);
    }
    const table = deps.clusters.table;
    let dest = table.resolve(host, port);
    if (dest.kind === 'external' && t.fallback !== undefined) {
      const byDst = table.resolve(t.fallback.host, t.fallback.port);
      if (byDst.kind === 'service') dest = byDst;
    }
    let target: ForwardTarget;
    if (dest.kind === 'service') {
      service = dest.service;
      const decision = table.route(dest.service, t.path, req.headers);
      route = decision.route;
      const cluster = deps.clusters.cluster(dest.service);
      if (cluster === undefined) throw new MeshError('MESH_ERR_NO_HEALTHY_ENDPOINT', `service "${dest.service}" has no endpoints`);
      target = { service: dest.service, policy: cluster.policy, budget: cluster.budget, pick: (ex) => cluster.pick(decision.filter, ex) };
    } else {
      try {
        deps.checkEgress(dest.host, dest.port);
      } catch (e) {
        // Explicit mode's contract is "name a service": an unknown service-like name (no dot,
        // or a mesh domain suffix) is a 404 that lists them; other hosts are egress (403).
        if (mode === 'explicit' && looksLikeServiceName(host, deps.config.domainSuffixes)) {
          const known = table.serviceNames();
          throw new MeshError('MESH_ERR_NO_ROUTE', `no service named "${host}"`, { details: { known: known.slice(0, 50), knownCount: known.length } });
        }
        throw e;
      }
      // One label value for every external host keeps metric cardinality bounded; the access
      // log keeps the authority.
      service = EGRESS_SERVICE;
      const ep = { address: formatHostPort(dest.host, dest.port), host: dest.host, port: dest.port, weight: 1, labels: {} };
      target = { service, policy: policyFor(deps.config, undefined), budget: undefined, pick: () => ({ endpoint: ep, release: () => {} }) };
    }
    const h = upstreamRequestHeaders({ headers: req.headers, remoteAddress: req.socket.remoteAddress, httpVersion: req.httpVersion, host: t.hostHeader, via: deps.via });
    requestId = h.requestId;
    if (deps.config.service !== undefined) h.headers['x-dreammesh-caller'] = deps.config.service;
    const result = await forwardHttp(
      { pool: (ep, svc, ms) => deps.clusters.pools.get(ep, svc, ms), via: deps.via, onRetry: (s, outcome) => deps.metrics.retries.inc({ service: s, outcome }) },
      req,
      res,
      target,
      t.path,
      h.headers,
    );
    endpoint = result.endpoint;
    attempts = result.attempts;
    if (result.error !== null) throw result.error;
  } catch (e) {
    error = toMeshError(e);
    if (error.code !== 'MESH_ERR_DOWNSTREAM_ABORTED') sendError(res, error);
  } finally {
    deps.inflight.count -= 1;
    const status = error?.code === 'MESH_ERR_DOWNSTREAM_ABORTED' ? 499 : error !== undefined && !res.headersSent ? error.status : res.statusCode;
    const durationMs = performance.now() - started;
    deps.metrics.requests.inc({ mode, service, code: String(status) });
    deps.metrics.requestDuration.observe({ mode, service }, durationMs / 1000);
    deps.accessLog.record({
      mode,
      method: req.method ?? '',
      path: (req.url ?? '').slice(0, 256),
      authority: authority.slice(0, 256),
      service,
      ...(route !== undefined ? { route } : {}),
      ...(endpoint !== undefined ? { endpoint } : {}),
      status,
      durationMs: Math.round(durationMs * 1000) / 1000,
      ...(error !== undefined ? { error: error.code } : {}),
      ...(requestId !== undefined ? { requestId } : {}),
      ...(attempts !== undefined && attempts > 1 ? { attempts } : {}),
      ...(req.socket.remoteAddress !== undefined ? { downstream: req.socket.remoteAddress } : {}),
    });
  }
}
