// The per-listener engines (HTTP/1 and HTTP/2) a sidecar hands its downstream connections to.
// Limits, timeouts, the access log and the router are getters over the sidecar's live state,
// read per request or stream, so a reload reaches connections that are already open.
import type { Agent as HttpAgent } from 'node:http';
import type { MeshConfig } from '../config/schema.js';
import { MeshError } from '../core/errors.js';
import type { HttpEngine } from '../http1/engine.js';
import type { H2Engine, H2Router } from '../http2/h2-engine.js';
import type { Entry } from '../pipeline/request-context.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { Metrics } from '../telemetry/metrics.js';

/** What the engines read from the running sidecar. */
export interface LiveState {
  config(): MeshConfig;
  accessLog(): AccessLog;
  draining(): boolean;
  readonly via: string;
  readonly metrics: Metrics;
  readonly inflight: { count: number };
}

/** Upstream response heads may be larger than request heads; beyond this they are refused (502). */
const RESPONSE_LIMITS = Object.freeze({ maxHeaderBytes: 65536, maxHeaderCount: 500, maxUriBytes: 0 });

/** What both engines of a listener share: live limits, timeouts, access log and router. */
function shared<R>(live: LiveState, listener: Entry, router: () => R) {
  return {
    listener,
    via: live.via,
    get limits() {
      return live.config().limits;
    },
    get timeouts() {
      return live.config().timeouts;
    },
    metrics: live.metrics,
    get accessLog() {
      return live.accessLog();
    },
    get router() {
      return router();
    },
    inflight: live.inflight,
    isDraining: () => live.draining(),
  };
}

// Object.assign onto the shared object keeps its getters live (only plain values are added).
export function httpEngine(live: LiveState, listener: Entry, router: () => HttpEngine['router'], onConnect: HttpEngine['onConnect'], onHttp2: HttpEngine['onHttp2']): HttpEngine {
  return Object.assign(shared(live, listener, router), { responseLimits: RESPONSE_LIMITS, connections: new Set<HttpEngine['connections'] extends Set<infer C> ? C : never>(), onConnect, onHttp2 });
}

/** The HTTP/2 path shares each listener's router, telemetry and in-flight count with HTTP/1. */
export function h2Engine(live: LiveState, listener: Entry, router: () => H2Router, http1Agent: HttpAgent): H2Engine {
  return Object.assign(shared(live, listener, router), { http1Agent });
}

const noApp = (): never => {
  throw new MeshError('MESH_ERR_APP_UNAVAILABLE', 'this sidecar has no app (config `app` is not set)');
};

/** The inbound routers while there is no app (the inbound listener is not bound then). */
export const NO_APP: HttpEngine['router'] = { route: noApp };
export const NO_APP_H2: H2Router = { routeStream: noApp };
