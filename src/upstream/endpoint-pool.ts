// Keep-alive connections to one upstream address. A connection is reused only after a
// complete response with no framing doubt (the exchange decides, see release). When every
// connection is busy, requests wait in a queue bounded per cluster (limits.maxPendingRequests):
// beyond it they fail at once with MESH_ERR_LIMIT_EXCEEDED instead of piling up in memory.
// The dial function makes the socket, so the same pool can later hold TLS connections.
import type { Socket } from 'node:net';
import { MeshError } from '../core/errors.js';
import { upstreamError } from './upstream-error.js';
import { UpstreamConnection, type ConnectionOwner } from './upstream-connection.js';

export interface PoolWaiter {
  /** May be called synchronously from acquire(). */
  onUpstream(c: UpstreamConnection): void;
  onUpstreamError(e: MeshError): void;
}

/** Requests waiting for a connection across one cluster's pools. */
export interface PendingLimit {
  count: number;
  readonly max: number;
}

export interface EndpointPoolOptions {
  readonly address: string;
  readonly dial: () => Socket;
  readonly maxConnections: number;
  /** How long an idle connection stays in the pool. */
  readonly keepAliveMs: number;
  /** No bytes either way for this long while in use: the exchange is told. */
  readonly idleMs: number;
  readonly onOpen: () => void;
  readonly onClose: () => void;
}

interface Waiting {
  readonly waiter: PoolWaiter;
  readonly pending: PendingLimit;
  readonly connectMs: number;
}

export class EndpointPool implements ConnectionOwner {
  private readonly idle: UpstreamConnection[] = [];
  private readonly queue: Waiting[] = [];
  /** Open and connecting sockets. */
  private total = 0;
  private closing = false;

  constructor(private readonly opts: EndpointPoolOptions) {}

  /** The endpoint left the registry (or the sidecar stops): no new exchanges. */
  get closed(): boolean {
    return this.closing;
  }

  get address(): string {
    return this.opts.address;
  }

  acquire(waiter: PoolWaiter, pending: PendingLimit, connectMs: number): void {
    if (this.closing) {
      waiter.onUpstreamError(new MeshError('MESH_ERR_UPSTREAM_REFUSED', `${this.opts.address}: the endpoint left the registry`));
      return;
    }
    for (let c = this.idle.pop(); c !== undefined; c = this.idle.pop()) {
      if (c.usable) {
        this.hand(c, waiter);
        return;
      }
      c.destroy();
    }
    if (this.total < this.opts.maxConnections) {
      this.connect({ waiter, pending, connectMs }, false);
      return;
    }
    if (pending.count >= pending.max) {
      waiter.onUpstreamError(new MeshError('MESH_ERR_LIMIT_EXCEEDED', `${pending.max} requests already wait for a connection (limits.maxPendingRequests)`));
      return;
    }
    pending.count += 1;
    this.queue.push({ waiter, pending, connectMs });
  }

  /** The waiter gave up (its client went away) before it got a connection. */
  cancel(waiter: PoolWaiter): void {
    const i = this.queue.findIndex((w) => w.waiter === waiter);
    if (i === -1) return;
    this.queue[i]!.pending.count -= 1;
    this.queue.splice(i, 1);
  }

  /** Back from an exchange: reused when `reusable`, else closed. */
  release(c: UpstreamConnection, reusable: boolean): void {
    c.user = null;
    c.served += 1;
    if (!reusable || this.closing || !c.usable) {
      c.destroy();
      return;
    }
    const next = this.queue.shift();
    if (next !== undefined) {
      next.pending.count -= 1;
      this.hand(c, next.waiter);
      return;
    }
    c.socket.setTimeout(this.opts.keepAliveMs);
    this.idle.push(c);
  }

  connectionClosed(c: UpstreamConnection): void {
    this.total -= 1;
    this.opts.onClose();
    const i = this.idle.indexOf(c);
    if (i !== -1) this.idle.splice(i, 1);
    // A slot is free: the first waiter gets a new connection.
    const next = this.queue.shift();
    if (next !== undefined && !this.closing) {
      next.pending.count -= 1;
      this.connect(next, true);
    }
  }

  /** The connection leaves the pool's accounting (it became a tunnel after 101). */
  detach(c: UpstreamConnection): void {
    c.detach();
    this.connectionClosed(c);
  }

  /** Closes idle connections now and the busy ones once their exchange ends. */
  close(force: boolean): void {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.destroy();
    for (const w of this.queue.splice(0)) {
      w.pending.count -= 1;
      w.waiter.onUpstreamError(new MeshError('MESH_ERR_UPSTREAM_REFUSED', `${this.opts.address}: the endpoint left the registry`));
    }
    if (force) this.destroyAll = true;
  }

  /** Set by close(true): busy connections are cut at release. */
  private destroyAll = false;

  private hand(c: UpstreamConnection, waiter: PoolWaiter): void {
    c.socket.setTimeout(this.opts.idleMs);
    waiter.onUpstream(c);
  }

  private connect(w: Waiting, deferred: boolean): void {
    this.total += 1;
    let socket: Socket;
    try {
      socket = this.opts.dial();
    } catch (e) {
      this.total -= 1;
      this.fail(w.waiter, upstreamError(e, this.opts.address), deferred);
      return;
    }
    this.opts.onOpen();
    const timer = setTimeout(() => {
      socket.destroy();
      onError(new MeshError('MESH_ERR_UPSTREAM_CONNECT_TIMEOUT', `${this.opts.address}: connect timed out after ${w.connectMs} ms`));
    }, w.connectMs);
    let settled = false;
    const onError = (e: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      this.total -= 1;
      this.opts.onClose();
      w.waiter.onUpstreamError(upstreamError(e, this.opts.address));
    };
    socket.once('error', onError);
    // A TLS socket is ready once the handshake (and the peer's identity check) succeeded.
    socket.once('encrypted' in socket ? 'secureConnect' : 'connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', onError);
      // From here on the connection's own handlers see every event; `closed` balances total.
      const c = new UpstreamConnection(socket, this);
      if (this.closing && this.destroyAll) {
        c.destroy();
        w.waiter.onUpstreamError(new MeshError('MESH_ERR_UPSTREAM_REFUSED', `${this.opts.address}: the endpoint left the registry`));
        return;
      }
      this.hand(c, w.waiter);
    });
  }

  private fail(waiter: PoolWaiter, e: MeshError, deferred: boolean): void {
    if (deferred) queueMicrotask(() => waiter.onUpstreamError(e));
    else waiter.onUpstreamError(e);
  }
}
