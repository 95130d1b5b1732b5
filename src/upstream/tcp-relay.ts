// Opaque byte relay between a downstream socket and a TCP upstream: used by CONNECT tunnels
// and by transparent connections that are not HTTP. Half-close is passed through in both
// directions (server-first and request/response protocols both rely on it), and every path
// ends with both sockets closed so nothing leaks.
import type { Socket } from 'node:net';
import { dialTcp } from '../steering/socket-options.js';
import type { Duplex } from 'node:stream';
import { MeshError } from '../core/errors.js';
import { readSinks, reusableRead, writeKept } from './read-buffer.js';
import { isNameNotResolved } from './upstream-error.js';

export interface RelayOptions {
  readonly connectTimeoutMs: number;
  /** Close both sides after this long with no bytes either way (0 = never). */
  readonly idleMs: number;
  /** Written to the upstream first (bytes the sidecar already read from the downstream). */
  readonly head?: Buffer;
  /** Called once the upstream is connected, before any byte is relayed (e.g. "200 Connection Established"). */
  readonly onConnected?: (upstream: Socket) => void;
  /** SO_MARK for the upstream socket (transparent.redirect.proxyMark). */
  readonly mark?: number | undefined;
  /** Makes the upstream instead of a plain TCP connect to host:port (mTLS-wrapped tunnels). */
  readonly connect?: () => Promise<Socket>;
}

export interface RelayResult {
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** null when both sides ended cleanly. */
  readonly error: MeshError | null;
  /** True when the upstream was never reached (the caller may still answer the downstream). */
  readonly connectFailed: boolean;
}

const noop = (): void => {};

/**
 * Connects a TCP upstream for a tunnel. Its bytes are read into a buffer of its own that is
 * reused while the downstream takes each chunk at once: a bulk transfer then allocates
 * nothing per chunk (Node's default 64 KiB allocation per read made V8 collect garbage
 * continually, at a cost that grows with the heap). Nothing is read until the relay starts.
 */
export function connectUpstream(host: string, port: number, timeoutMs: number, mark?: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let s: Socket;
    try {
      // `mark` (transparent.redirect.proxyMark) is on the socket before its SYN.
      s = dialTcp({ host, port, mark, noDelay: true, allowHalfOpen: true, onread: reusableRead(() => s) });
    } catch (e) {
      reject(e instanceof MeshError ? e : new MeshError('MESH_ERR_UPSTREAM_RESET', `connect to ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e }));
      return;
    }
    // Nothing is read until the relay gives the bytes a destination (relayDown).
    readSinks.set(s, () => false);
    s.pause();
    const timer = setTimeout(() => {
      s.destroy();
      reject(new MeshError('MESH_ERR_UPSTREAM_CONNECT_TIMEOUT', `connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.on('error', noop); // until the caller attaches its own handlers
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      const code = e.code === 'ECONNREFUSED' ? 'MESH_ERR_UPSTREAM_REFUSED' : isNameNotResolved(e.code) ? 'MESH_ERR_UPSTREAM_UNRESOLVED' : 'MESH_ERR_UPSTREAM_RESET';
      reject(new MeshError(code, `connect to ${host}:${port}: ${e.code ?? e.message}`, { cause: e }));
    });
  });
}

/** Connects to host:port and relays until both directions end or either side fails. */
export async function relayTcp(downstream: Duplex, host: string, port: number, opts: RelayOptions): Promise<RelayResult> {
  let upstream: Socket;
  try {
    upstream = await (opts.connect?.() ?? connectUpstream(host, port, opts.connectTimeoutMs, opts.mark));
  } catch (e) {
    return { bytesUp: 0, bytesDown: 0, error: e as MeshError, connectFailed: true };
  }
  if (downstream.destroyed) {
    upstream.destroy();
    return { bytesUp: 0, bytesDown: 0, error: new MeshError('MESH_ERR_DOWNSTREAM_ABORTED'), connectFailed: false };
  }
  opts.onConnected?.(upstream);
  return pipeBoth(downstream, upstream, opts);
}

/**
 * Relays between a downstream stream and an upstream made by connectUpstream, with
 * backpressure both ways and no per-chunk work; one side's FIN becomes the other side's FIN
 * while the other direction goes on. Resolves once both sockets are closed. An error or
 * abrupt close on either side, or the idle timeout, destroys both.
 */
export function pipeBoth(downstream: Duplex, upstream: Socket, opts: Pick<RelayOptions, 'head' | 'idleMs'>): Promise<RelayResult> {
  return new Promise((resolve) => {
    let error: MeshError | null = null;
    let closed = 0;
    const down = downstream as Duplex & { allowHalfOpen: boolean };
    down.allowHalfOpen = true;
    upstream.allowHalfOpen = true;
    const fail = (e: MeshError): void => {
      error ??= e;
      downstream.destroy();
      upstream.destroy();
    };
    const onClose = (): void => {
      closed += 1;
      if (closed < 2) return;
      upstream.setTimeout(0);
      resolve({ bytesUp: upstream.bytesWritten, bytesDown: upstream.bytesRead, error, connectFailed: false });
    };
    downstream.once('error', () => {
      // A client that already sent its FIN and then resets (a TLS client closing with unread
      // bytes, say) ended the tunnel normally; a reset without a FIN is an abort.
      if (downstream.readableEnded) {
        downstream.destroy();
        upstream.destroy();
      } else fail(new MeshError('MESH_ERR_DOWNSTREAM_ABORTED'));
    });
    upstream.once('error', (e: NodeJS.ErrnoException) => fail(new MeshError('MESH_ERR_UPSTREAM_RESET', `upstream: ${e.code ?? e.message}`, { cause: e })));
    // A side that closes before both its directions finished was cut off: cut the other too.
    downstream.once('close', () => {
      if (!downstream.readableEnded) fail(new MeshError('MESH_ERR_DOWNSTREAM_ABORTED'));
      else if (!downstream.writableFinished) upstream.destroy(); // the client is gone: nobody to relay to
      onClose();
    });
    upstream.once('close', () => {
      if (!upstream.readableEnded || !upstream.writableFinished) fail(new MeshError('MESH_ERR_UPSTREAM_RESET', 'upstream closed before the tunnel finished'));
      onClose();
    });
    if (opts.idleMs > 0) {
      // Reads and writes on the upstream both count as activity, so this covers both directions.
      upstream.setTimeout(opts.idleMs, () => fail(new MeshError('MESH_ERR_TUNNEL_IDLE', `no bytes either way for ${opts.idleMs} ms`)));
    }
    if (opts.head && opts.head.length > 0) upstream.write(opts.head);
    downstream.pipe(upstream);
    if (readSinks.has(upstream)) relayDown(upstream, downstream);
    else upstream.pipe(downstream); // not made by connectUpstream: a plain stream
  });
}

/**
 * upstream → downstream for a socket that reads into a reusable buffer (read-buffer.ts): each
 * chunk is a view of that buffer. The sink reports whether the downstream kept a reference to it
 * (queued instead of handed to the kernel), so the next read gets a fresh buffer; a full
 * downstream pauses reading until it drains. The upstream's FIN becomes the downstream's.
 */
function relayDown(upstream: Socket, downstream: Duplex): void {
  // (The placeholder sink set by connectUpstream is never called: the socket was paused.)
  readSinks.set(upstream, (chunk) => {
    const queuedBefore = downstream.writableLength > 0;
    if (!downstream.write(chunk)) {
      upstream.pause();
      downstream.once('drain', () => upstream.resume());
    }
    return writeKept(downstream, queuedBefore);
  });
  upstream.once('end', () => downstream.end());
  upstream.resume();
}
