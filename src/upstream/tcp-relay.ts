// Opaque byte relay between a downstream socket and a TCP upstream: used by CONNECT tunnels
// and by transparent connections that are not HTTP. Half-close is passed through in both
// directions (server-first and request/response protocols both rely on it), and every path
// ends with both sockets destroyed so nothing leaks.
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { MeshError } from '../core/errors.js';

export interface RelayOptions {
  readonly connectTimeoutMs: number;
  /** Close both sides after this long with no bytes either way (0 = never). */
  readonly idleMs: number;
  /** Written to the upstream first (bytes the sidecar already read from the downstream). */
  readonly head?: Buffer;
  /** Called once the upstream is connected, before any byte is relayed (e.g. "200 Connection Established"). */
  readonly onConnected?: (upstream: Socket) => void;
}

export interface RelayResult {
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** null when both sides ended cleanly. */
  readonly error: MeshError | null;
  /** True when the upstream was never reached (the caller may still answer the downstream). */
  readonly connectFailed: boolean;
}

export function connectUpstream(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new MeshError('MESH_ERR_UPSTREAM_CONNECT_TIMEOUT', `connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      const code = e.code === 'ECONNREFUSED' ? 'MESH_ERR_UPSTREAM_REFUSED' : 'MESH_ERR_UPSTREAM_RESET';
      reject(new MeshError(code, `connect to ${host}:${port}: ${e.code ?? e.message}`, { cause: e }));
    });
  });
}

/** Connects to host:port and relays until both directions end or either side fails. */
export async function relayTcp(downstream: Duplex, host: string, port: number, opts: RelayOptions): Promise<RelayResult> {
  let upstream: Socket;
  try {
    upstream = await connectUpstream(host, port, opts.connectTimeoutMs);
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

/** Relays between two already-connected streams; resolves when both are finished. */
export function pipeBoth(downstream: Duplex, upstream: Socket, opts: Pick<RelayOptions, 'head' | 'idleMs'>): Promise<RelayResult> {
  return new Promise((resolve) => {
    let bytesUp = 0;
    let bytesDown = 0;
    let error: MeshError | null = null;
    let ended = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      downstream.destroy();
      upstream.destroy();
      resolve({ bytesUp, bytesDown, error, connectFailed: false });
    };
    const onEnd = (): void => {
      ended += 1;
      if (ended === 2) finish();
    };
    if (opts.head && opts.head.length > 0) {
      bytesUp += opts.head.length;
      upstream.write(opts.head);
    }
    downstream.on('data', (c: Buffer) => {
      bytesUp += c.length;
      if (!upstream.write(c)) downstream.pause();
    });
    upstream.on('drain', () => downstream.resume());
    upstream.on('data', (c: Buffer) => {
      bytesDown += c.length;
      if (!downstream.write(c)) upstream.pause();
    });
    downstream.on('drain', () => upstream.resume());
    // Half-close: one side's FIN becomes the other side's FIN, the other direction goes on.
    downstream.once('end', () => {
      upstream.end();
      onEnd();
    });
    upstream.once('end', () => {
      downstream.end();
      onEnd();
    });
    downstream.once('error', () => {
      error ??= new MeshError('MESH_ERR_DOWNSTREAM_ABORTED');
      finish();
    });
    upstream.once('error', (e) => {
      error ??= new MeshError('MESH_ERR_UPSTREAM_RESET', e.message, { cause: e });
      finish();
    });
    downstream.once('close', finish);
    upstream.once('close', () => {
      // An upstream close before its FIN is a reset; after both FINs it is the normal end.
      if (ended < 2) error ??= new MeshError('MESH_ERR_UPSTREAM_RESET', 'upstream closed');
      finish();
    });
    if (opts.idleMs > 0) {
      upstream.setTimeout(opts.idleMs, finish);
    }
  });
}
