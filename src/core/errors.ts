// One error registry for the whole sidecar. Every failure on the request path is a MeshError
// value with a stable code; src/core/error-response.ts is the single place that turns it into
// an HTTP answer (or a closed connection for opaque TCP). Codes are never reused; every code
// is documented in docs/errors.md (test/unit/errors-doc.test.ts keeps the two in step).

export type ErrorOrigin = 'local' | 'upstream';

export interface ErrorSpec {
  /** HTTP status the error becomes. */
  readonly status: number;
  readonly origin: ErrorOrigin;
  /** May the request be retried on another endpoint? */
  readonly retryable: boolean;
  /** One line for people: what happened. */
  readonly summary: string;
}

export const ERRORS = {
  MESH_ERR_BAD_REQUEST: { status: 400, origin: 'local', retryable: false, summary: 'The request is not valid HTTP/1.1 or breaks framing rules.' },
  MESH_ERR_BAD_HOST: { status: 400, origin: 'local', retryable: false, summary: 'The Host header (or request authority) is missing or malformed.' },
  MESH_ERR_HEADERS_TOO_LARGE: { status: 431, origin: 'local', retryable: false, summary: 'The request header section exceeds the configured limit.' },
  MESH_ERR_URI_TOO_LONG: { status: 414, origin: 'local', retryable: false, summary: 'The request target exceeds the configured limit.' },
  MESH_ERR_UNSUPPORTED_SCHEME: { status: 400, origin: 'local', retryable: false, summary: 'An absolute-form request used a scheme other than http.' },
  MESH_ERR_NO_ROUTE: { status: 404, origin: 'local', retryable: false, summary: 'The destination names no known service and is not an allowed external host.' },
  MESH_ERR_NO_ROUTE_MATCH: { status: 404, origin: 'local', retryable: false, summary: 'The service exists but none of its route rules matches the request.' },
  MESH_ERR_EGRESS_DENIED: { status: 403, origin: 'local', retryable: false, summary: 'The destination is outside the mesh and the egress policy does not allow it.' },
  MESH_ERR_LOOP: { status: 508, origin: 'local', retryable: false, summary: 'The request targets this sidecar itself or already passed through it.' },
  MESH_ERR_NO_HEALTHY_ENDPOINT: { status: 503, origin: 'local', retryable: false, summary: 'The service has no endpoint that is up and not ejected.' },
  MESH_ERR_LIMIT_EXCEEDED: { status: 503, origin: 'local', retryable: false, summary: 'A circuit-breaking limit (connections, pending or active requests) was reached.' },
  MESH_ERR_RETRY_BUDGET: { status: 503, origin: 'local', retryable: false, summary: 'A retry was needed but the retry budget is spent.' },
  MESH_ERR_UPSTREAM_REFUSED: { status: 503, origin: 'upstream', retryable: true, summary: 'Every tried endpoint refused the connection.' },
  MESH_ERR_UPSTREAM_UNRESOLVED: { status: 502, origin: 'upstream', retryable: true, summary: 'The destination is a host name that does not resolve (DNS answered no address, or could not be asked).' },
  MESH_ERR_UPSTREAM_CONNECT_TIMEOUT: { status: 504, origin: 'upstream', retryable: true, summary: 'Connecting to the endpoint took longer than the connect timeout.' },
  MESH_ERR_DEADLINE_EXCEEDED: { status: 504, origin: 'local', retryable: false, summary: "A gRPC call's deadline (grpc-timeout) passed before the upstream finished it; gRPC clients get status 4 DEADLINE_EXCEEDED." },
  MESH_ERR_UPSTREAM_TIMEOUT: { status: 504, origin: 'upstream', retryable: false, summary: 'The upstream did not answer within the request timeout.' },
  MESH_ERR_UPSTREAM_RESET: { status: 502, origin: 'upstream', retryable: false, summary: 'The upstream closed or reset the connection before a complete response.' },
  MESH_ERR_UPSTREAM_PROTOCOL: { status: 502, origin: 'upstream', retryable: false, summary: 'The upstream answered with bytes that are not a valid HTTP response.' },
  MESH_ERR_APP_UNAVAILABLE: { status: 503, origin: 'upstream', retryable: false, summary: 'Inbound: the local application is not accepting connections.' },
  MESH_ERR_DOWNSTREAM_ABORTED: { status: 499, origin: 'local', retryable: false, summary: 'The downstream client went away before the response was complete (logged, never sent).' },
  MESH_ERR_DRAINING: { status: 503, origin: 'local', retryable: false, summary: 'The sidecar is shutting down and accepts no new requests.' },
  MESH_ERR_CONFIG_INVALID: { status: 500, origin: 'local', retryable: false, summary: 'The configuration does not match the schema (the field is named in the message).' },
  MESH_ERR_NATIVE_MISSING: { status: 500, origin: 'local', retryable: false, summary: 'Transparent mode (and proxyMark, TPROXY inbound) needs the native addon, which is not built.' },
  MESH_ERR_REDIRECT_INVALID: { status: 500, origin: 'local', retryable: false, summary: 'Capture (redirect) settings are invalid: a CIDR, port, uid or backend is malformed; nothing was applied.' },
  MESH_ERR_REDIRECT_FAILED: { status: 500, origin: 'local', retryable: false, summary: 'Capture rules could not be read, installed or removed (backend binary missing, or the kernel refused the rule set).' },
  MESH_ERR_REGISTRY_UNAVAILABLE: { status: 503, origin: 'local', retryable: false, summary: 'The registry backend cannot be reached and no cached snapshot exists.' },
  MESH_ERR_TUNNEL_IDLE: { status: 504, origin: 'local', retryable: false, summary: 'A CONNECT or opaque tunnel carried no bytes either way for timeouts.idleMs and was closed (counted, never sent).' },
  MESH_ERR_PROXY_NEEDS_TCP: { status: 500, origin: 'local', retryable: false, summary: 'Forward-proxy settings (HTTP_PROXY, Java properties) need a TCP outbound listener; a unix: listener cannot be a proxy.' },
  MESH_ERR_REQUEST_HEADER_TIMEOUT: { status: 408, origin: 'local', retryable: false, summary: 'The request head did not arrive completely within timeouts.requestHeaderMs; the connection is closed.' },
  MESH_ERR_DOWNSTREAM_TIMEOUT: {
    status: 408,
    origin: 'local',
    retryable: false,
    summary: 'The client stopped sending its request body for timeouts.downstreamIdleMs; the request is abandoned and the connection closed.',
  },
  MESH_ERR_DRAIN_TIMEOUT: { status: 503, origin: 'local', retryable: false, summary: 'A request or tunnel still open when drainTimeoutMs ran out after SIGTERM/SIGINT was cut (logged, never sent).' },
  MESH_ERR_OPTIONAL_DEPENDENCY: { status: 500, origin: 'local', retryable: false, summary: 'A feature needs an optional package that is not installed (the message names it and the npm install command).' },
  MESH_ERR_PEER_IDENTITY: {
    status: 502,
    origin: 'upstream',
    retryable: true,
    summary: "mTLS: the endpoint's certificate does not carry the SPIFFE ID of the service the request was routed to (the message names expected and presented); nothing was sent to it.",
  },
  MESH_ERR_PEER_UNTRUSTED: {
    status: 502,
    origin: 'upstream',
    retryable: true,
    summary: "mTLS: the endpoint's certificate does not chain to this sidecar's CA, or is expired or not yet valid (the message gives the reason); nothing was sent to it.",
  },
  MESH_ERR_TLS_HANDSHAKE: {
    status: 502,
    origin: 'upstream',
    retryable: true,
    summary: 'mTLS: the TLS handshake with the endpoint failed (it refused our certificate, spoke no TLS 1.3, or this sidecar has no identity loaded).',
  },
  MESH_ERR_FORBIDDEN: { status: 403, origin: 'local', retryable: false, summary: 'Inbound: no authz.allow rule lets this caller use this method and path; the app never saw the request.' },
  MESH_ERR_PLAINTEXT_REFUSED: { status: 400, origin: 'local', retryable: false, summary: 'Inbound with mtls.mode strict: a plaintext connection was closed without an answer (counted and logged, never sent).' },
  MESH_ERR_DOWNSTREAM_TLS: {
    status: 400,
    origin: 'local',
    retryable: false,
    summary: 'Inbound: a TLS client failed the handshake (no certificate, a certificate from another CA, expired, no SPIFFE ID); the connection was closed (counted and logged, never sent).',
  },
  MESH_ERR_IDENTITY_INVALID: {
    status: 500,
    origin: 'local',
    retryable: false,
    summary:
      'The mtls certificate, key or CA file is missing, unreadable, malformed or inconsistent (key does not match, no SPIFFE ID, not signed by the CA); at start this stops the sidecar, on rotation the last good identity stays.',
  },
  MESH_ERR_INTERNAL: { status: 500, origin: 'local', retryable: false, summary: 'A bug in DreamMesh; the message and logs say where.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly origin: ErrorOrigin;
  readonly retryable: boolean;
  /** Extra, human-readable facts for the JSON body (e.g. known services for a 404). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(message ?? spec.summary, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MeshError';
    this.code = code;
    this.status = spec.status;
    this.origin = spec.origin;
    this.retryable = spec.retryable;
    this.details = opts.details;
  }
}

export function isMeshError(e: unknown): e is MeshError {
  return e instanceof MeshError;
}

/** Wraps anything thrown into a MeshError, keeping the original as the cause. */
export function toMeshError(e: unknown, fallback: ErrorCode = 'MESH_ERR_INTERNAL'): MeshError {
  if (e instanceof MeshError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new MeshError(fallback, msg, { cause: e });
}
