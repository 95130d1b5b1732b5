// Steering for HTTP requests: which mode brought the request and which authority it names.
// explicit: origin-form + Host; proxy: absolute-form URI (Host is ignored, RFC 9112 §3.2.2);
// transparent: Host, else the original destination.
import type { Steering } from '../core/sidecar-context.js';
import { MeshError } from '../core/errors.js';
import { formatHostPort } from '../core/address.js';
import { parseAuthority, type Authority } from '../routing/authority.js';
import { canonicalHost } from '../core/canonical-address.js';

export interface RequestTarget {
  readonly steering: Steering;
  readonly authority: Authority;
  /** Authority as written (sent upstream as Host). */
  readonly hostHeader: string;
  /** origin-form path + query sent upstream. */
  readonly path: string;
  /**
   * Transparent: where the connection was going. When the Host names no mesh service but this
   * is one of a service's endpoints (a DNS name the mesh does not know), it routes by this.
   */
  readonly fallback?: Authority;
}

/** `url` is the request-target as received, `host` the Host header (null when absent). */
export function requestTarget(url: string, host: string | null, connection: Steering): RequestTarget {
  if (url.startsWith('/')) {
    if (connection.mode === 'transparent') {
      if (host !== null && host.length > 0) return { steering: connection, authority: parseAuthority(host), hostHeader: host, path: url, fallback: connection.originalDst };
      const dst = connection.originalDst;
      const hp = formatHostPort(dst.host, dst.port);
      // Canonical, like every other authority (an IPv4-mapped IPv6 destination is its IPv4 address).
      return { steering: connection, authority: { host: canonicalHost(dst.host.toLowerCase()) ?? dst.host, port: dst.port }, hostHeader: hp, path: url };
    }
    return { steering: { mode: 'explicit' }, authority: parseAuthority(host ?? undefined), hostHeader: host ?? '', path: url };
  }
  let rest: string;
  if (url.startsWith('http://'))
    rest = url.slice(7); // the common case, without a regex
  else {
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url);
    if (scheme === null) throw new MeshError('MESH_ERR_BAD_REQUEST', `"${url.slice(0, 100)}" is neither a path nor an absolute URI`);
    if (scheme[1]!.toLowerCase() !== 'http') {
      throw new MeshError('MESH_ERR_UNSUPPORTED_SCHEME', `absolute-form requests must use http:// (got ${scheme[1]}://); use CONNECT for https`);
    }
    rest = url.slice(scheme[0].length);
  }
  const slash = rest.search(/[/?#]/);
  const rawAuthority = slash === -1 ? rest : rest.slice(0, slash);
  if (rawAuthority.includes('@')) throw new MeshError('MESH_ERR_BAD_HOST', 'user information in the request URI is not accepted');
  let path = slash === -1 ? '/' : rest.slice(slash);
  if (path.startsWith('?')) path = '/' + path;
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  return { steering: { mode: 'proxy' }, authority: parseAuthority(rawAuthority), hostHeader: rawAuthority, path };
}
