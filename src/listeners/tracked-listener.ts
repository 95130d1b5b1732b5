// A listener that can move: it binds a TCP or unix address, remembers every downstream socket
// it accepted (so a drain can wait for them and a deadline can cut them), and re-binds to a
// new address on reload by opening the new server first and then closing the old one. Closing
// a node:net server only stops accepting: connections already established keep running.
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.js';
import type { ListenAddress } from '../core/address.js';
import { listen } from './listen.js';
import { capConnections } from './connection-cap.js';

const PRUNE_MIN = 256;

export interface TrackedListenerOptions {
  readonly name: 'outbound' | 'inbound';
  readonly metrics: Metrics;
  readonly log: Logger;
  maxConnections(): number;
  onConnection(socket: Socket): void;
  /** Open the TCP socket with IP_TRANSPARENT (TPROXY inbound), read at each bind. */
  transparent?(): boolean;
}

export class TrackedListener {
  private server: Server | undefined;
  private address: string | undefined;
  /**
   * Open downstream sockets. A 'close' listener cannot be relied on to remove them: whoever
   * takes a socket over (a CONNECT or upgrade tunnel) may remove every listener it did not
   * add. Destroyed sockets are pruned instead, when counted and as the set grows.
   */
  private readonly sockets = new Set<Socket>();
  private pruneAt = PRUNE_MIN;
  bound: ListenAddress | undefined;

  constructor(private readonly opts: TrackedListenerOptions) {}

  /** Binds `address`; when already bound elsewhere, the old server stops accepting once the new one listens. */
  async bind(address: string): Promise<ListenAddress> {
    if (this.server !== undefined && address === this.address) return this.bound!;
    const server = this.create();
    const bound = await listen(server, address, this.opts.name, { transparent: this.opts.transparent?.() === true });
    const old = this.server;
    this.server = server;
    this.address = address;
    this.bound = bound;
    // Not awaited: a closing server's callback waits for its last connection, which may be a
    // long stream; it stops accepting at once, and its connections stay in `sockets`.
    if (old !== undefined) old.close();
    return bound;
  }

  /** Stops accepting; established connections go on. */
  close(): void {
    const s = this.server;
    this.server = undefined;
    this.address = undefined;
    this.bound = undefined;
    if (s?.listening === true) s.close();
  }

  /** The limit applies to the server accepting now (a reload may change it). */
  applyLimit(): void {
    if (this.server !== undefined) this.server.maxConnections = this.opts.maxConnections();
  }

  /** Open downstream connections (HTTP keep-alive, tunnels, upgraded connections). */
  get connections(): number {
    this.prune();
    return this.sockets.size;
  }

  openSockets(): Iterable<Socket> {
    this.prune();
    return this.sockets;
  }

  private prune(): void {
    for (const s of this.sockets) if (s.destroyed) this.sockets.delete(s);
    this.pruneAt = Math.max(PRUNE_MIN, this.sockets.size * 2);
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private create(): Server {
    const { name, log } = this.opts;
    // allowHalfOpen: a client's FIN must not end our side (a response, a CONNECT tunnel or an
    // opaque relay may still owe it bytes).
    const server = createNetServer({ noDelay: true, keepAlive: true, allowHalfOpen: true }, (socket) => {
      this.sockets.add(socket);
      if (this.sockets.size >= this.pruneAt) this.prune();
      socket.once('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      this.opts.onConnection(socket);
    });
    // Errors before listening (EADDRINUSE) are reported by listen(); these are the later ones.
    server.on('error', (e) => {
      if (server.listening) log.error({ err: e }, `${name} listener error`);
    });
    capConnections(server, this.opts.maxConnections(), name, this.opts.metrics, log);
    return server;
  }
}
