// Outbound mTLS: connections to endpoints marked `mtls` (another sidecar's inbound listener).
// TLS 1.3 with this sidecar's certificate; the server's chain must verify against our CA and
// its SPIFFE ID must name the service the request was routed to, checked during the handshake
// (checkServerIdentity), so not one byte of a request reaches a wrong or untrusted peer.
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { X509Certificate as X509 } from 'node:crypto';
import type { OnReadOpts } from 'node:net';
import { MeshError } from '../core/errors.js';
import { dialTcp } from '../steering/socket-options.js';
import { presentedId, serviceSpiffeId, spiffeIdsOf } from './spiffe.js';
import type { IdentityStore } from './identity-store.js';

/** ALPN ids: HTTP/1.1 exchanges, HTTP/2 sessions, and opaque TCP (CONNECT, transparent) wrapped in mTLS. */
export const ALPN_HTTP1 = 'http/1.1';
export const ALPN_H2 = 'h2';
export const ALPN_TCP = 'dreammesh-tcp';

/** Marks an identity failure found in checkServerIdentity so upstreamError can tell it apart. */
class PeerIdentityError extends Error {
  readonly code = 'DREAMMESH_PEER_IDENTITY';
}

export interface MtlsDial {
  readonly host: string;
  readonly port: number;
  readonly service: string;
  readonly alpn: string;
}

/** Opens a TLS connection; emits 'secureConnect' once the peer proved the expected identity. */
export function dialMtls(store: IdentityStore | undefined, d: MtlsDial, extra: { allowHalfOpen?: boolean; onread?: OnReadOpts; mark?: number | undefined } = {}): TLSSocket {
  if (store === undefined) {
    throw new MeshError('MESH_ERR_TLS_HANDSHAKE', `${d.host}:${d.port} is marked mtls but this sidecar has no identity (set mtls.certFile, keyFile and caFile)`);
  }
  const id = store.identity;
  const expected = serviceSpiffeId(id.trustDomain, d.service);
  // transparent.redirect.proxyMark: the TCP socket underneath carries the mark from its SYN on.
  // tls.connect ignores onread over a socket of ours, so its bytes are fed to it from 'data'.
  const marked = extra.mark !== undefined && extra.mark !== 0;
  const socket = tlsConnect({
    host: d.host,
    port: d.port,
    ...(marked ? { socket: dialTcp({ host: d.host, port: d.port, mark: extra.mark, allowHalfOpen: extra.allowHalfOpen === true }) } : {}),
    secureContext: id.context,
    ALPNProtocols: [d.alpn],
    rejectUnauthorized: true,
    ...(extra.allowHalfOpen === true ? { allowHalfOpen: true } : {}),
    // tls.connect takes net's onread (decrypted bytes into our buffer); the typings omit it.
    ...((extra.onread !== undefined ? { onread: extra.onread } : {}) as object),
    checkServerIdentity: (_host, peer) => {
      const raw = (peer as { raw?: Buffer }).raw;
      const cert: X509Certificate | undefined = raw === undefined ? undefined : new X509(raw);
      const ids = cert === undefined ? [] : spiffeIdsOf(cert);
      if (ids.length === 1 && ids[0] === expected) return undefined;
      return new PeerIdentityError(`expected ${expected}, presented ${presentedId(cert)}`);
    },
  });
  const onread = extra.onread;
  if (marked && onread !== undefined) socket.on('data', (chunk: Buffer) => onread.callback(chunk.length, chunk));
  socket.setNoDelay(true);
  socket.setKeepAlive(true);
  return socket;
}

/** OpenSSL verification codes that mean "not signed by a CA we trust" or "outside its dates". */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/** A TLS failure of an upstream connection as a mesh error, or undefined when it is not one. */
export function tlsUpstreamError(e: unknown, where: string): MeshError | undefined {
  if (e === null || typeof e !== 'object') return undefined;
  const err = e as { code?: string; message?: string };
  const code = err.code ?? '';
  if (code === 'DREAMMESH_PEER_IDENTITY') return new MeshError('MESH_ERR_PEER_IDENTITY', `${where}: ${err.message ?? ''}`, { cause: e });
  if (UNTRUSTED.has(code)) return new MeshError('MESH_ERR_PEER_UNTRUSTED', `${where}: the peer certificate does not verify against mtls.caFile (${code})`, { cause: e });
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /alert|handshake|wrong version number/i.test(err.message ?? '')) {
    return new MeshError('MESH_ERR_TLS_HANDSHAKE', `${where}: TLS handshake failed (${code || err.message || 'unknown'}): the peer may have refused this sidecar's certificate`, { cause: e });
  }
  return undefined;
}
