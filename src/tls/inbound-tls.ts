// The inbound listener with mTLS on. The first byte of a connection decides: 0x16 (a TLS
// handshake record) is terminated here with our certificate, and the client must present one
// that chains to our CA and names a service of our trust domain; anything else is plaintext,
// served in permissive mode and closed (counted, logged) in strict mode. After the handshake
// the ALPN the client offered decides what the connection carries: HTTP/1.1 exchanges for the
// engine, or an opaque TCP tunnel (dreammesh-tcp) unwrapped to the app's port.
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { MtlsConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { IdentityStore } from './identity-store.js';
import { ALPN_HTTP1, ALPN_TCP } from './outbound-tls.js';
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

function terminate(deps: InboundTlsDeps, raw: Socket): void {
  const { store, mtls } = deps;
  // Bytes already read (the ClientHello) sit in raw's buffer; TLSSocket feeds them to OpenSSL first.
  const tls = new TLSSocket(raw, {
    isServer: true,
    secureContext: store.identity.context,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: [ALPN_HTTP1, ALPN_TCP],
  });
  let settled = false;
  let reason: string | undefined;
  const refuse = (why: string, detail: string): void => {
    settled = true;
    deps.metrics.mtlsInboundRefused.inc({ reason: why });
    deps.log.info({ code: 'MESH_ERR_DOWNSTREAM_TLS', reason: detail, downstream: raw.remoteAddress }, 'inbound: mTLS handshake refused');
    tls.destroy();
    raw.destroy();
  };
  const timer = setTimeout(() => refuse('handshake-timeout', `no mTLS handshake within ${mtls.handshakeTimeoutMs} ms`), mtls.handshakeTimeoutMs);
  tls.on('error', (e: NodeJS.ErrnoException) => {
    reason ??= e.code ?? e.message;
  });
  tls.once('close', () => {
    clearTimeout(timer);
    if (settled) return;
    const why = reason ?? tls.authorizationError?.toString() ?? 'closed';
    deps.metrics.mtlsInboundRefused.inc({ reason: reasonLabel(why) });
    deps.log.info({ code: 'MESH_ERR_DOWNSTREAM_TLS', reason: why, downstream: raw.remoteAddress }, 'inbound: mTLS handshake failed');
    raw.destroy();
  });
  tls.once('secure', () => {
    clearTimeout(timer);
    const cert = tls.getPeerX509Certificate();
    const ids = cert === undefined ? [] : spiffeIdsOf(cert);
    const caller = ids.length === 1 ? serviceOf(ids[0]!, mtls.trustDomain) : undefined;
    if (!tls.authorized || caller === undefined) {
      refuse('bad-identity', `client certificate ${tls.authorized ? `carries ${presentedId(cert)}, not spiffe://${mtls.trustDomain}/service/<name>` : `not authorized (${String(tls.authorizationError)})`}`);
      return;
    }
    settled = true;
    setCaller(tls, caller, raw);
    if (tls.alpnProtocol === ALPN_TCP) deps.onTunnel(tls, caller);
    else deps.onHttp(tls, caller);
  });
}

/** Bounded label values for dreammesh_mtls_inbound_refused_total. */
function reasonLabel(code: string): string {
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(code)) return 'no-client-cert';
  if (/EXPIRED|NOT_YET_VALID/i.test(code)) return 'expired';
  if (/UNABLE_TO_|SELF_SIGNED|UNKNOWN_CA|CERT_SIGNATURE|UNTRUSTED|VERIFY/i.test(code)) return 'untrusted';
  if (/ECONNRESET|closed|EPIPE/i.test(code)) return 'closed';
  return 'handshake';
}
