// One request's record as it flows listener → steering → route → cluster → endpoint →
// finish. The engine creates it when a request head is parsed, routing and the exchange fill
// it in, and finish() turns it into metrics and one access-log line, the same for every entry.
import type { MeshError } from '../core/errors.js';

export type Entry = 'outbound' | 'inbound';

export class RequestContext {
  readonly started = performance.now();
  /** explicit | proxy | transparent | inbound. */
  mode: string;
  method = '';
  path = '';
  authority = '';
  /** Service name, "egress", "app" (inbound) or "-" before routing. */
  service = '-';
  route: string | undefined;
  endpoint: string | undefined;
  /** Status sent downstream; 499 when the client went away first. */
  status = 0;
  error: MeshError | undefined;
  requestId: string | undefined;
  attempts = 0;
  /** Inbound: who called (a known service name, or "unknown"). */
  caller: string | undefined;
  /** Set when the exchange became a tunnel after 101 Switching Protocols. */
  upgraded = false;
  /** gRPC calls: the grpc-status the client got (metrics label grpc_status). */
  grpcStatus: number | undefined;

  constructor(
    readonly entry: Entry,
    mode: string,
    readonly downstream: string | undefined,
  ) {
    this.mode = mode;
  }
}
