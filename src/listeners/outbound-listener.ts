// The outbound listener: one port for all three ways in. Each accepted connection is
// classified once: a redirected one (original destination ≠ our own address) goes to the
// transparent path; everything else is HTTP/1 for the engine, where absolute-form requests
// are forward-proxy, CONNECT opens a tunnel, and origin-form is explicit mode.
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { SidecarContext } from '../core/sidecar-context.js';
import { originalDestination } from '../steering/original-dst.js';
import { handleTransparent } from '../steering/transparent.js';
import { capConnections } from './connection-cap.js';

export class OutboundListener {
  readonly server: NetServer;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly ctx: SidecarContext) {
    // allowHalfOpen: a client's FIN must not end our side (a response, a CONNECT tunnel or an
    // opaque relay may still owe it bytes).
    this.server = createNetServer({ noDelay: true, keepAlive: true, allowHalfOpen: true }, (socket) => this.accept(socket));
    // Errors before listening (EADDRINUSE) are reported by listen(); these are the later ones.
    this.server.on('error', (e) => {
      if (this.server.listening) ctx.log.error({ err: e }, 'outbound listener error');
    });
    capConnections(this.server, ctx.config.limits.maxDownstreamConnections, 'outbound', ctx.metrics, ctx.log);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (this.ctx.config.transparent.enabled) {
      const dst = originalDestination(socket);
      // Envoy's loop guard: a destination equal to our own address means "not redirected".
      const local = (socket.localAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
      if (dst !== null && !(dst.host === local && dst.port === socket.localPort)) {
        handleTransparent(this.ctx, socket, dst);
        return;
      }
    }
    this.ctx.adoptHttp(socket, { mode: 'explicit' });
  }

  /** Open downstream connections (HTTP keep-alive and tunnels). */
  get connections(): number {
    return this.sockets.size;
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}
