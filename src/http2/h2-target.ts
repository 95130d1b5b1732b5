// Steering for one HTTP/2 stream: which authority names the destination. `:authority` (or a
// Host header) first, as for HTTP/1; a captured connection falls back to its original
// destination and a CONNECT-terminated one to the CONNECT authority when that names no service.
import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { HostPort, Steering } from '../core/sidecar-context.js';
import { MeshError } from '../core/errors.js';
import { requestTarget, type RequestTarget } from '../steering/request-target.js';
import { parseAuthority } from '../routing/authority.js';
import { formatHostPort } from '../core/address.js';

/** What one downstream HTTP/2 connection brought with it, decided once at adoption. */
export interface H2ConnectionInfo {
  readonly steering: Steering;
  /** Proxy mode: the authority of the CONNECT that carried this connection. */
  readonly connectTarget?: HostPort;
  readonly remoteAddress: string | undefined;
  /** Inbound: the downstream socket (TLS when mTLS), which knows the verified caller. */
  readonly socket?: Socket;
}

/** The stream's :path, checked as an origin-form request target. */
export function h2Path(headers: IncomingHttpHeaders, maxUriBytes: number): string {
  const path = headers[':path'];
  if (typeof path !== 'string' || !path.startsWith('/')) throw new MeshError('MESH_ERR_BAD_REQUEST', `HTTP/2 requests need a :path starting with "/" (got ${JSON.stringify(String(path ?? '')).slice(0, 100)})`);
  if (path.length > maxUriBytes) throw new MeshError('MESH_ERR_URI_TOO_LONG', `the :path is ${path.length} bytes; the limit is ${maxUriBytes}`);
  return path;
}

export function h2Target(headers: IncomingHttpHeaders, info: H2ConnectionInfo, maxUriBytes: number): RequestTarget {
  const path = h2Path(headers, maxUriBytes);
  const a = headers[':authority'] ?? headers.host;
  const authority = typeof a === 'string' && a.length > 0 ? a : null;
  const s = info.steering;
  if (s.mode !== 'proxy') return requestTarget(path, authority, s);
  const via = info.connectTarget!;
  if (authority === null) return { steering: s, authority: { host: via.host, port: via.port }, hostHeader: formatHostPort(via.host, via.port), path };
  return { steering: s, authority: parseAuthority(authority), hostHeader: authority, path, fallback: via };
}
