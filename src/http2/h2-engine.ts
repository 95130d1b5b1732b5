// What the HTTP/2 path needs from the sidecar: limits, telemetry, the outbound router's
// decision (the same one HTTP/1 requests get), and the in-flight count drain waits for.
import type { IncomingHttpHeaders } from 'node:http2';
import type { Agent } from 'node:http';
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { RequestContext } from '../pipeline/request-context.js';
import type { RequestTarget } from '../steering/request-target.js';
import type { ForwardTarget } from '../upstream/forward-target.js';
import type { MeshConfig } from '../config/schema.js';

export interface H2Router {
  decide(t: RequestTarget, viaHeader: string | undefined, headers: () => IncomingHttpHeaders, ctx: RequestContext): ForwardTarget;
}

export interface H2Engine {
  readonly via: string;
  readonly limits: MeshConfig['limits'];
  readonly timeouts: MeshConfig['timeouts'];
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
  readonly router: H2Router;
  readonly inflight: { count: number };
  /** Keep-alive HTTP/1.1 connections to endpoints with protocol: http1. */
  readonly http1Agent: Agent;
  isDraining(): boolean;
}
