// Forwards one HTTP request to an upstream endpoint through its keep-alive pool, streaming
// the request body up and the response body down with backpressure (nothing is buffered).
// Idempotent requests without a body are retried on another endpoint when the connection
// could not be made, within the retry budget.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { EndpointLease } from '../core/sidecar-context.js';
import { MeshError } from '../core/errors.js';
import { downstreamResponseHeaders } from '../telemetry/request-headers.js';
import type { Endpoint } from '../registry/registry.js';
import type { ClusterPolicy } from './cluster.js';
import type { RetryBudget } from './retry-budget.js';
import { failedBeforeSending, upstreamError } from './upstream-error.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export interface ForwardTarget {
  /** Metrics label: the service name, or "egress" for every destination outside the mesh. */
  readonly service: string;
  readonly policy: ClusterPolicy;
  readonly budget: RetryBudget | undefined;
  /** Picks the endpoint for an attempt, skipping addresses already tried. */
  pick(exclude: ReadonlySet<string>): EndpointLease;
}

export interface ForwardResult {
  readonly endpoint: string | undefined;
  readonly error: MeshError | null;
  readonly attempts: number;
}

export interface ForwardDeps {
  /** The keep-alive pool for an endpoint. */
  readonly pool: (endpoint: Endpoint, service: string, connectMs: number) => Dispatcher;
  readonly via: string;
  readonly onRetry: (service: string, outcome: 'attempted' | 'budget-exhausted') => void;
}

export async function forwardHttp(
  deps: ForwardDeps,
  req: IncomingMessage,
  res: ServerResponse,
  target: ForwardTarget,
  path: string,
  headers: Record<string, string | string[]>,
): Promise<ForwardResult> {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  const retriable = IDEMPOTENT.has(req.method ?? '') && !hasBody;
  const tried = new Set<string>();
  target.budget?.recordRequest();
  let attempts = 0;
  let last: ForwardResult | undefined;
  for (;;) {
    let lease: EndpointLease;
    try {
      lease = target.pick(tried);
    } catch (e) {
      if (last !== undefined) return last; // nowhere else to go: report the real failure
      throw e;
    }
    attempts += 1;
    const ep = lease.endpoint;
    tried.add(ep.address);
    const pool = deps.pool(ep, target.service, target.policy.connectMs);
    const err = await dispatchOnce(pool, req, res, path, headers, hasBody, target.policy, ep.address, deps.via);
    // A 5xx from the endpoint counts against it for outlier ejection, like a failed connect.
    lease.release(err === null ? res.statusCode < 500 : err.origin !== 'upstream');
    last = { endpoint: ep.address, error: err, attempts };
    if (err === null) return last;
    const canRetry = retriable && failedBeforeSending(err) && !res.headersSent && attempts <= target.policy.retryAttempts && !res.destroyed;
    if (!canRetry) return last;
    if (target.budget !== undefined && !target.budget.tryRetry()) {
      deps.onRetry(target.service, 'budget-exhausted');
      return last;
    }
    deps.onRetry(target.service, 'attempted');
  }
}

/** One attempt. Resolves with null on a completed response, or the error. Never rejects. */
function dispatchOnce(
  pool: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  headers: Record<string, string | string[]>,
  hasBody: boolean,
  policy: ClusterPolicy,
  where: string,
  via: string,
): Promise<MeshError | null> {
  return new Promise((resolve) => {
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    const settle = (e: MeshError | null): void => {
      if (settled) return;
      settled = true;
      res.off('close', onDownstreamClose);
      resolve(e);
    };
    const onDownstreamClose = (): void => {
      if (!res.writableFinished) {
        controller?.abort(new MeshError('MESH_ERR_DOWNSTREAM_ABORTED'));
        settle(new MeshError('MESH_ERR_DOWNSTREAM_ABORTED'));
      }
    };
    res.on('close', onDownstreamClose);
    const onDrain = (): void => controller?.resume();
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (res.destroyed) c.abort(new MeshError('MESH_ERR_DOWNSTREAM_ABORTED'));
      },
      onResponseStart(_c, statusCode, rawHeaders, statusMessage) {
        if (statusCode < 200) return; // 1xx informational: not forwarded
        res.writeHead(statusCode, statusMessage ?? '', downstreamResponseHeaders(rawHeaders, via));
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) {
          c.pause();
          res.once('drain', onDrain);
        }
      },
      onResponseEnd(_c, trailers) {
        if (trailers && Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
        res.end();
        settle(null);
      },
      onResponseError(_c, e) {
        settle(e instanceof MeshError ? e : upstreamError(e, where));
      },
    };
    try {
      pool.dispatch(
        {
          path,
          method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
          headers,
          body: hasBody ? req : null,
          headersTimeout: policy.requestMs,
          bodyTimeout: policy.idleMs,
        },
        handler,
      );
    } catch (e) {
      settle(upstreamError(e, where));
    }
  });
}
