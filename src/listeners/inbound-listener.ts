// The inbound listener: requests from other sidecars (or captured inbound traffic) are
// delivered to the local app. Counted by caller; a down app is a clear 503, not a hang.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MeshConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { Pools } from '../upstream/pools.js';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../registry/registry.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { sendError } from '../core/error-response.js';
import type { Socket } from 'node:net';
import { parseListenAddress, formatHostPort } from '../core/address.js';
import { originalDestination, originalDstAvailable } from '../steering/original-dst.js';
import { upstreamRequestHeaders } from '../telemetry/request-headers.js';
import { forwardHttp } from '../upstream/forward-http.js';
import { policyFor } from '../upstream/cluster.js';

export interface InboundDeps {
  readonly config: MeshConfig;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
  readonly pools: Pools;
  readonly via: string;
  readonly inflight: { count: number };
  isDraining(): boolean;
  knownCaller(name: string): boolean;
}

export function createInboundHandler(deps: InboundDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const app = parseListenAddress(deps.config.app);
  if (app === null) throw new MeshError('MESH_ERR_CONFIG_INVALID', `app: "${deps.config.app}" is not host:port or unix:/path`);
  const appEndpoint: Endpoint =
    app.kind === 'unix'
      ? { address: deps.config.app, host: 'localhost', port: 0, weight: 1, labels: {} }
      : { address: deps.config.app, host: app.host, port: app.port, weight: 1, labels: {} };
  const policy = { ...policyFor(deps.config, undefined), retryAttempts: 0 };
  const appPool = (e: Endpoint, service: string, connectMs: number): Dispatcher =>
    deps.pools.get(app.kind === 'unix' ? { socketPath: app.path } : { host: e.host, port: e.port }, service, connectMs);

  // Captured inbound traffic (transparent mode) goes to the app on the port it was sent to;
  // decided once per connection. Everything else goes to `app`.
  const byOriginalPort = deps.config.transparent.enabled && app.kind === 'tcp' && originalDstAvailable();
  const endpoints = new WeakMap<Socket, Endpoint>();
  const appEndpointFor = (socket: Socket): Endpoint => {
    if (!byOriginalPort || app.kind !== 'tcp') return appEndpoint;
    let e = endpoints.get(socket);
    if (e === undefined) {
      const dst = originalDestination(socket);
      const local = (socket.localAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
      const redirected = dst !== null && !(dst.host === local && dst.port === socket.localPort);
      e = redirected && dst.port !== app.port ? { address: formatHostPort(app.host, dst.port), host: app.host, port: dst.port, weight: 1, labels: {} } : appEndpoint;
      endpoints.set(socket, e);
    }
    return e;
  };

  return (req, res) => {
    const started = performance.now();
    const target = appEndpointFor(req.socket);
    deps.inflight.count += 1;
    if (deps.isDraining()) res.setHeader('connection', 'close');
    const claimed = req.headers['x-dreammesh-caller'];
    const caller = typeof claimed === 'string' && deps.knownCaller(claimed) ? claimed : 'unknown';
    let error: MeshError | undefined;
    const finish = (): void => {
      deps.inflight.count -= 1;
      const status = error?.code === 'MESH_ERR_DOWNSTREAM_ABORTED' ? 499 : error !== undefined && !res.headersSent ? error.status : res.statusCode;
      const durationMs = performance.now() - started;
      deps.metrics.inboundRequests.inc({ caller, code: String(status) });
      deps.metrics.requests.inc({ mode: 'inbound', service: deps.config.service ?? 'app', code: String(status) });
      deps.metrics.requestDuration.observe({ mode: 'inbound', service: deps.config.service ?? 'app' }, durationMs / 1000);
      deps.accessLog.record({
        mode: 'inbound',
        method: req.method ?? '',
        path: (req.url ?? '').slice(0, 256),
        authority: (req.headers.host ?? '').slice(0, 256),
        service: deps.config.service ?? 'app',
        endpoint: target.address,
        status,
        durationMs: Math.round(durationMs * 1000) / 1000,
        ...(error !== undefined ? { error: error.code } : {}),
        ...(req.socket.remoteAddress !== undefined ? { downstream: req.socket.remoteAddress } : {}),
      });
    };
    const h = upstreamRequestHeaders({ headers: req.headers, remoteAddress: req.socket.remoteAddress, httpVersion: req.httpVersion, host: req.headers.host ?? 'localhost', via: deps.via });
    forwardHttp(
      { pool: appPool, via: deps.via, onRetry: () => {} },
      req,
      res,
      { service: 'inbound', policy, budget: undefined, pick: () => ({ endpoint: target, release: () => {} }) },
      req.url ?? '/',
      h.headers,
    )
      .then((r) => {
        if (r.error === null) return;
        const e = r.error;
        error =
          e.code === 'MESH_ERR_UPSTREAM_REFUSED' || e.code === 'MESH_ERR_UPSTREAM_CONNECT_TIMEOUT'
            ? new MeshError('MESH_ERR_APP_UNAVAILABLE', `the local app at ${target.address} is not accepting connections`, { cause: e })
            : e;
        if (error.code !== 'MESH_ERR_DOWNSTREAM_ABORTED') sendError(res, error);
      })
      .catch((e: unknown) => {
        error = toMeshError(e);
        sendError(res, error);
      })
      .finally(finish);
  };
}
