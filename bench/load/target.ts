// How a load generator reaches the service in one bench row: over which transport, and in
// which request shape (explicit Host, forward-proxy absolute-form, or a CONNECT tunnel).
export type Transport = { readonly tcp: { readonly host: string; readonly port: number } } | { readonly unix: string };

export interface LoadTarget {
  readonly transport: Transport;
  /** origin: `GET /` with a Host header; absolute: `GET http://host/`; connect: CONNECT host, then origin-form inside. */
  readonly shape: 'origin' | 'absolute' | 'connect';
  /** The Host header / URI authority / CONNECT authority naming the service. */
  readonly authority: string;
  /** Run the generator inside this network namespace (transparent rows). */
  readonly netns?: string;
}

export interface ThroughputResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
}

export interface LatencyResult {
  readonly rate: number;
  readonly requests: number;
  readonly errors: number;
  /** Milliseconds, measured from each request's scheduled start (no coordinated omission). */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
}

export interface BulkResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly gbps: number;
}
