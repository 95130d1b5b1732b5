// What the HTTP/1 engine needs from the sidecar for one listener: limits, timeouts,
// telemetry, the router that decides where each request goes, and what to do with CONNECT.
import type { Socket } from 'node:net';
import type { Steering } from '../core/sidecar-context.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { RequestContext, Entry } from '../pipeline/request-context.js';
import type { HeadLimits, RequestHead } from './head.js';
import type { ForwardTarget } from '../upstream/forward-target.js';
import type { DownstreamConnection } from './downstream-connection.js';

/** Where one request goes, as routing decided it. */
export interface RoutedRequest {
  readonly target: ForwardTarget;
  readonly path: string;
  /** Host sent upstream. */
  readonly host: string;
  /** Extra header lines (each ending in CRLF). */
  readonly extra: string;
  /** Forward an Upgrade (WebSocket); false strips it. */
  readonly upgrade: boolean;
}

export interface HttpRouter {
  /** Decides where a request goes and fills ctx (mode, service, route); throws MeshError. */
  route(head: RequestHead, ctx: RequestContext, dc: DownstreamConnection): RoutedRequest;
}

export interface EngineTimeouts {
  readonly requestHeaderMs: number;
  readonly downstreamIdleMs: number;
  /** Tunnels after an upgrade: no bytes either way for this long closes both sides. */
  readonly idleMs: number;
}

export interface HttpEngine {
  readonly listener: Entry;
  readonly via: string;
  readonly limits: HeadLimits;
  readonly responseLimits: HeadLimits;
  readonly timeouts: EngineTimeouts;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
  readonly router: HttpRouter;
  /** Requests in flight across the sidecar (drain waits for them). */
  readonly inflight: { count: number };
  /** Open downstream connections of this listener (drain closes them). */
  readonly connections: Set<DownstreamConnection>;
  isDraining(): boolean;
  /** CONNECT on this listener: the socket (no longer read by the engine) and bytes read after the head. */
  readonly onConnect: ((socket: Socket, head: RequestHead, rest: Buffer | null) => void) | null;
  /**
   * A connection whose first bytes are the HTTP/2 preface: the socket (no longer read by the
   * engine, every byte read so far put back) goes to the HTTP/2 path. null: not served here.
   */
  readonly onHttp2: ((socket: Socket, steering: Steering) => void) | null;
}
