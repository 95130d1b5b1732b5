// One pooled upstream socket. Its events go to whoever uses it now (an exchange); while idle
// in the pool any byte or FIN from the upstream means the connection can no longer be
// trusted (a late response, or the server closing it) and it is discarded.
import type { Socket } from 'node:net';
import { readSinks } from './read-buffer.js';

/** What an exchange implements to receive an upstream connection's events. */
export interface UpstreamUser {
  /** `chunk` is a view of a reused read buffer: returns true if it kept a reference to it. */
  onUpstreamData(chunk: Buffer): boolean;
  onUpstreamEnd(): void;
  /** The socket closed; `error` is set when it failed (reset, EPIPE, ...). */
  onUpstreamClose(error: NodeJS.ErrnoException | undefined): void;
  onUpstreamDrain(): void;
  /** No bytes either way for the idle timeout while in use. */
  onUpstreamTimeout(): void;
}

export interface ConnectionOwner {
  /** The socket closed (for any reason); the pool forgets it. */
  connectionClosed(c: UpstreamConnection): void;
}

export class UpstreamConnection {
  user: UpstreamUser | null = null;
  /** Exchanges this connection has completed: > 0 means it was reused from the pool. */
  served = 0;
  private error: NodeJS.ErrnoException | undefined;

  constructor(
    readonly socket: Socket,
    private readonly owner: ConnectionOwner,
  ) {
    // The socket reads into a reusable buffer (read-buffer.ts); the user says whether it kept the bytes.
    readSinks.set(socket, (chunk) => {
      if (this.user !== null) return this.user.onUpstreamData(chunk);
      socket.destroy();
      return false;
    });
    socket.on('end', () => {
      if (this.user !== null) this.user.onUpstreamEnd();
      else socket.destroy();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e;
    });
    socket.on('drain', () => this.user?.onUpstreamDrain());
    socket.on('timeout', () => {
      if (this.user !== null) this.user.onUpstreamTimeout();
      else socket.destroy(); // idle in the pool for too long
    });
    socket.on('close', () => {
      owner.connectionClosed(this);
      const u = this.user;
      this.user = null;
      u?.onUpstreamClose(this.error);
    });
  }

  get usable(): boolean {
    return !this.socket.destroyed && this.socket.writable && this.socket.readable;
  }

  /** Leaves the pool for good (a protocol switch): the caller owns the socket's events now. */
  detach(): Socket {
    for (const ev of ['end', 'error', 'drain', 'timeout', 'close']) this.socket.removeAllListeners(ev);
    readSinks.set(this.socket, () => false); // until the tunnel sets its own (tcp-relay)
    this.socket.pause();
    this.socket.setTimeout(0);
    this.user = null;
    return this.socket;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
