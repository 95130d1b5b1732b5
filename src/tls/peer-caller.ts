// The verified caller of an inbound connection: the service named by the SPIFFE ID of the
// client certificate, set once the mTLS handshake succeeded. A plaintext connection has none;
// nothing a client writes (x-dreammesh-caller) can set it.
import type { Socket } from 'node:net';

const callers = new WeakMap<Socket, string>();
/** The raw TCP socket under an inbound TLS socket (original destination lookups need it). */
const raws = new WeakMap<Socket, Socket>();

/** The caller label of connections without a verified identity. */
export const UNAUTHENTICATED = 'unknown';

export function setCaller(socket: Socket, service: string, raw: Socket): void {
  callers.set(socket, service);
  raws.set(socket, raw);
}

export function callerOf(socket: Socket): string | undefined {
  return callers.get(socket);
}

export function rawSocketOf(socket: Socket): Socket {
  return raws.get(socket) ?? socket;
}
