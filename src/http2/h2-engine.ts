// What the HTTP/2 path needs from the sidecar for one listener: limits, telemetry, the router
// that decides where each stream goes (the outbound router's decision, the same one HTTP/1
// requests get, or the inbound router's "the app"), and the in-flight count drain waits for.
import type { IncomingHttpHeaders } from 'node:http2';
import type { Agent } from 'node:http';
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { Entry, RequestContext } from '../pipeline/request-context.js';
import type { ForwardTarget } from '../upstream/forward-target.js';
import type { MeshConfig } from '../config/schema.js';
import type { H2ConnectionInfo } from './h2-target.js';

/** Where one stream goes, as routing decided it. */
export interface H2Route {
  readonly target: ForwardTarget;
  /** :authority and :path sent upstream. */
  readonly authority: string;
  readonly path: string;
  /** Inbound: the verified mTLS caller, sent to the app as x-dreammesh-caller. */
  readonly caller?: string | undefined;
}

export interface H2Router {
  /** Decides where a stream goes and fills ctx (mode, service, route, caller); throws MeshError. */
  routeStream(headers: IncomingHttpHeaders, info: H2ConnectionInfo, ctx: RequestContext): H2Route;
}

export interface H2Engine {
  readonly listener: Entry;
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
