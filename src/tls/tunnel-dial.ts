// Opaque TCP (CONNECT tunnels, transparent opaque connections) to an endpoint marked mtls:
// wrapped in the same mTLS as HTTP, with the ALPN id dreammesh-tcp so that the receiving
// sidecar relays the bytes to its app instead of parsing them as HTTP.
import type { Socket } from 'node:net';
import { MeshError } from '../core/errors.js';
import type { IdentityStore } from './identity-store.js';
import { ALPN_TCP, dialMtls, tlsUpstreamError } from './outbound-tls.js';

export function connectMtlsTunnel(store: IdentityStore | undefined, host: string, port: number, service: string, timeoutMs: number, mark?: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const where = `${host}:${port}`;
    let s: Socket;
    try {
      s = dialMtls(store, { host, port, service, alpn: ALPN_TCP }, { allowHalfOpen: true, mark });
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    s.pause();
    const timer = setTimeout(() => {
      s.destroy();
      reject(new MeshError('MESH_ERR_UPSTREAM_CONNECT_TIMEOUT', `mTLS connect to ${where} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.on('error', () => {}); // until the relay attaches its own handlers
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      const code = e.code === 'ECONNREFUSED' ? 'MESH_ERR_UPSTREAM_REFUSED' : 'MESH_ERR_UPSTREAM_RESET';
      reject(tlsUpstreamError(e, where) ?? new MeshError(code, `mTLS connect to ${where}: ${e.code ?? e.message}`, { cause: e }));
    });
  });
}
