// Forward-proxy CONNECT tunnels. Placeholder until issue 3 lands: answers 501.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SidecarContext } from '../core/sidecar-context.js';

export function handleConnect(_ctx: SidecarContext, _req: IncomingMessage, socket: Duplex, _head: Buffer): void {
  socket.end('HTTP/1.1 501 Not Implemented\r\nx-dreammesh-error: MESH_ERR_BAD_REQUEST\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
}
