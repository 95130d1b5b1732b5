// Transparent mode: a redirected connection whose original destination differs from the
// listener's own address. Placeholder until issue 4 lands: closes the connection.
import type { Socket } from 'node:net';
import type { HostPort, SidecarContext } from '../core/sidecar-context.js';

export function handleTransparent(ctx: SidecarContext, socket: Socket, originalDst: HostPort): void {
  ctx.log.warn({ originalDst }, 'transparent connection received but transparent mode is not built');
  socket.destroy();
}
