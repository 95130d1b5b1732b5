// Where a routed request may go: the cluster (or the app, or an egress host) as the HTTP
// engine sees it. Built by routing for each request; the exchange picks endpoints from it.
import type { EndpointLease } from '../core/sidecar-context.js';
import type { MeshError } from '../core/errors.js';
import type { Endpoint } from '../registry/registry.js';
import type { ClusterPolicy } from './cluster.js';
import type { RetryBudget } from './retry-budget.js';
import type { EndpointPool, PendingLimit } from './endpoint-pool.js';
import type { H2SessionPool } from '../http2/h2-session-pool.js';
import type { Socket } from 'node:net';

export interface ForwardTarget {
  /** Metrics label: the service name, "egress" for destinations outside the mesh, the app's name inbound. */
  readonly service: string;
  readonly policy: ClusterPolicy;
  readonly budget: RetryBudget | undefined;
  /** Requests of this cluster waiting for a connection. */
  readonly pending: PendingLimit;
  /** Picks the endpoint for an attempt, skipping addresses already tried; throws MeshError. */
  pick(exclude: ReadonlySet<string>): EndpointLease;
  pool(endpoint: Endpoint): EndpointPool;
  /** HTTP/2 sessions to an endpoint (HTTP/2 downstream calls); absent where only HTTP/1 goes. */
  h2Pool?(endpoint: Endpoint): H2SessionPool;
  /**
   * The HTTP/1.1 bridge of HTTP/2 requests (endpoints with protocol: http1): its connection
   * when it is not plain TCP (an mTLS endpoint). Absent or undefined: the shared keep-alive agent.
   */
  h1Dial?(endpoint: Endpoint): (() => Socket) | undefined;
  /** Rewrites an upstream failure for this target (inbound: "the app is unavailable"). */
  mapError?(e: MeshError): MeshError;
}
