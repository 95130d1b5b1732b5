// The outbound listener: one port for all three ways in. Each accepted connection is
// classified once: a redirected one (original destination ≠ our own address) goes to the
// transparent path; everything else is HTTP/1 for the engine, where absolute-form requests
// are forward-proxy, CONNECT opens a tunnel, and origin-form is explicit mode.
import type { Socket } from 'node:net';
import type { SidecarContext } from '../core/sidecar-context.js';
import { originalDestination } from '../steering/original-dst.js';
import { handleTransparent } from '../steering/transparent.js';
import type { CaptureLog } from '../steering/capture-log.js';

export function acceptOutbound(ctx: SidecarContext, socket: Socket, captures?: CaptureLog): void {
  if (ctx.config.transparent.enabled) {
    const dst = originalDestination(socket);
    // Envoy's loop guard: a destination equal to our own address means "not redirected".
    const local = (socket.localAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
    if (dst !== null && !(dst.host === local && dst.port === socket.localPort)) {
      captures?.note(socket.remoteAddress, socket.remotePort, dst);
      handleTransparent(ctx, socket, dst);
      return;
    }
  }
  ctx.adoptHttp(socket, { mode: 'explicit' });
}
