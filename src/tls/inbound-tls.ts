// The inbound listener with mTLS on. The first byte of a connection decides: 0x16 (a TLS
// handshake record) is terminated here with our certificate, and the client must present one
// that chains to our CA and names a service of our trust domain; anything else is plaintext,
// served in permissive mode and closed (counted, logged) in strict mode. After the handshake
// the ALPN the client offered decides what the connection carries: HTTP/1.1 exchanges for the
// engine, HTTP/2 (h2) for the HTTP/2 path, or an opaque TCP tunnel (dreammesh-tcp) unwrapped
// to the app's port.
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { MtlsConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { IdentityStore } from './identity-store.js';
import { ALPN_H2, ALPN_HTTP1, ALPN_TCP } from './outbound-tls.js';
import { presentedId, serviceOf, spiffeIdsOf } from './spiffe.js';
import { setCaller } from './peer-caller.js';

const TLS_HANDSHAKE = 0x16;

export interface InboundTlsDeps {
  readonly mtls: MtlsConfig;
  readonly store: IdentityStore;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** How long a connection may stay silent before its first byte. */
  readonly firstByteMs: number;
  /** HTTP on a plaintext or TLS socket (`caller` set for a verified TLS peer). */
  onHttp(socket: Socket, caller: string | undefined): void;
  /** HTTP/2 on a verified TLS socket (ALPN h2). */
  onHttp2(socket: TLSSocket, caller: string): void;
  /** An opaque tunnel for the app (ALPN dreammesh-tcp). */
  onTunnel(socket: TLSSocket, caller: string): void;
}

export function acceptInboundMtls(deps: InboundTlsDeps, raw: Socket): void {
  const timer = setTimeout(() => raw.destroy(), deps.firstByteMs);
  const gone = (): void => {
    clearTimeout(timer);
    raw.off('data', onFirst);
  };
  const onFirst = (first: Buffer): void => {
    gone();
    raw.off('close', gone);
    raw.pause();
    raw.unshift(first);
    if (first[0] === TLS_HANDSHAKE) terminate(deps, raw);
    else if (deps.mtls.mode === 'strict') refusePlaintext(deps, raw);
    else deps.onHttp(raw, undefined);
  };
  raw.on('data', onFirst);
  raw.once('close', gone);
}

function refusePlaintext(deps: InboundTlsDeps, raw: Socket): void {
  deps.metrics.mtlsInboundRefused.inc({ reason: 'plaintext' });
  deps.log.info({ code: 'MESH_ERR_PLAINTEXT_REFUSED', downstream: raw.remoteAddress }, 'inbound: plaintext connection refused (mtls.mode strict)');
  raw.destroy();
}

/**
 * One tls.Server (never listening: connections are handed to it) per identity generation, so
 * a rotation gives new connections the new certificate while established ones keep theirs.
 * The server verifies the client chain (requestCert, rejectUnauthorized) and times the handshake.
 */
const servers = new WeakMap<InboundTlsDeps['store'], { generation: number; server: TlsServer }>();

function serverFor(deps: InboundTlsDeps): TlsServer {
  const { store, mtls } = deps;
  const cached = servers.get(store);
  if (cached !== undefined && cached.generation === store.generation) return cached.server;
  const b = store.identity.bytes;
  const server = createTlsServer({
    cert: b.cert,
    key: b.key,
    ca: b.ca,
    minVersion: 'TLSv1.3',
    requestCert: true,
    // Verified in secured(), which can say why (expired, another CA, none) in logs and metrics.
    rejectUnauthorized: false,
    ALPNProtocols: [ALPN_HTTP1, ALPN_H2, ALPN_TCP],
    handshakeTimeout: mtls.handshakeTimeoutMs,
  });
  server.on('secureConnection', (tls: TLSSocket) => secured(deps, tls));
  server.on('tlsClientError', (e: NodeJS.ErrnoException, tls: TLSSocket) => {
    const why = e.code ?? e.message;
    deps.metrics.mtlsInboundRefused.inc({ reason: reasonLabel(why) });
    deps.log.info({ code: 'MESH_ERR_DOWNSTREAM_TLS', reason: `${why}: ${e.message}`, downstream: tls.remoteAddress }, 'inbound: mTLS handshake failed');
    tls.destroy();
  });
  servers.set(store, { generation: store.generation, server });
  return server;
}

function terminate(deps: InboundTlsDeps, raw: Socket): void {
  // Bytes already read (the ClientHello) sit in raw's buffer; the TLS socket feeds them to OpenSSL first.
  serverFor(deps).emit('connection', raw);
}

function secured(deps: InboundTlsDeps, tls: TLSSocket): void {
  const { mtls } = deps;
  const cert = tls.getPeerX509Certificate();
  const ids = cert === undefined ? [] : spiffeIdsOf(cert);
  const caller = ids.length === 1 ? serviceOf(ids[0]!, mtls.trustDomain) : undefined;
  if (cert === undefined || !tls.authorized || caller === undefined) {
    const why = cert === undefined ? 'no-client-cert' : !tls.authorized ? reasonLabel(String(tls.authorizationError)) : 'bad-identity';
    const detail =
      cert === undefined
        ? 'no client certificate'
        : !tls.authorized
          ? `client certificate refused (${String(tls.authorizationError)})`
          : `client certificate carries ${presentedId(cert)}, not spiffe://${mtls.trustDomain}/service/<name>`;
    deps.metrics.mtlsInboundRefused.inc({ reason: why });
    deps.log.info({ code: 'MESH_ERR_DOWNSTREAM_TLS', reason: detail, downstream: tls.remoteAddress }, 'inbound: mTLS peer refused');
    tls.destroy();
    return;
  }
  tls.on('error', () => tls.destroy());
  // The TCP socket under it: transparent inbound capture reads the original destination there.
  setCaller(tls, caller, (tls as unknown as { _parent?: Socket })._parent ?? tls);
  if (tls.alpnProtocol === ALPN_TCP) deps.onTunnel(tls, caller);
  else if (tls.alpnProtocol === ALPN_H2) deps.onHttp2(tls, caller);
  else deps.onHttp(tls, caller);
}

/** Bounded label values for dreammesh_mtls_inbound_refused_total. */
function reasonLabel(code: string): string {
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(code)) return 'no-client-cert';
  if (/EXPIRED|NOT_YET_VALID/i.test(code)) return 'expired';
  if (/UNABLE_TO_|SELF_SIGNED|UNKNOWN_CA|CERT_SIGNATURE|UNTRUSTED|VERIFY/i.test(code)) return 'untrusted';
  if (/ECONNRESET|closed|EPIPE/i.test(code)) return 'closed';
  return 'handshake';
}
