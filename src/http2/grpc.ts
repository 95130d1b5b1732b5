// gRPC facts the HTTP/2 path needs: which requests are gRPC, the call deadline a client sent
// (grpc-timeout), and how a sidecar-made error becomes a gRPC status (Trailers-Only response).
import type { IncomingHttpHeaders } from 'node:http2';
import type { ErrorCode } from '../core/errors.js';

/** gRPC status codes the sidecar itself produces (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * The call's timeout in ms from `grpc-timeout` ("100m", "5S": at most 8 digits and a unit),
 * or undefined when absent or malformed (a malformed value is ignored, as gRPC servers do).
 */
export function grpcTimeoutMs(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  return Math.max(0, Number(m[1]) * UNIT_MS[m[2]!]!);
}

/** Which gRPC status a sidecar error means to a gRPC client. */
export function grpcStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'MESH_ERR_NO_ROUTE':
    case 'MESH_ERR_NO_ROUTE_MATCH':
      return GrpcStatus.UNIMPLEMENTED;
    case 'MESH_ERR_DEADLINE_EXCEEDED':
    case 'MESH_ERR_UPSTREAM_TIMEOUT':
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 'MESH_ERR_EGRESS_DENIED':
    case 'MESH_ERR_FORBIDDEN':
      return GrpcStatus.PERMISSION_DENIED;
    case 'MESH_ERR_HEADERS_TOO_LARGE':
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 'MESH_ERR_BAD_HOST':
    case 'MESH_ERR_BAD_REQUEST':
      return GrpcStatus.INVALID_ARGUMENT;
    case 'MESH_ERR_DOWNSTREAM_ABORTED':
      return GrpcStatus.CANCELLED;
    case 'MESH_ERR_LOOP':
    case 'MESH_ERR_INTERNAL':
    case 'MESH_ERR_UPSTREAM_PROTOCOL':
      return GrpcStatus.INTERNAL;
    default:
      // No endpoint, refused or timed-out connect, limits, budget, draining, reset, an mTLS peer
      // that failed its identity check, the inbound app down: UNAVAILABLE,
      // which gRPC clients may retry (the sidecar already tried where that was safe).
      return GrpcStatus.UNAVAILABLE;
  }
}

/**
 * grpc-message is percent-encoded (gRPC over HTTP/2 spec): only '%' and bytes outside printable
 * ASCII are encoded (clients decode no more than that: "a/b: c" must stay as written). Bounded.
 */
export function grpcMessage(text: string): string {
  return text.slice(0, 512).replace(/[^\x20-\x24\x26-\x7e]+/g, (run) => {
    let out = '';
    for (const byte of Buffer.from(run, 'utf8')) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    return out;
  });
}
