// Multiplexed HTTP/2 sessions to one upstream endpoint. A call takes the least-busy ready
// session that is under the peer's SETTINGS_MAX_CONCURRENT_STREAMS; when every session is full
// another one is opened (up to limits.maxConnectionsPerEndpoint, then the least-busy one queues
// the stream inside nghttp2). A session that receives GOAWAY or fails leaves the pool at once
// (its running streams finish); one with no streams for keepAliveMs is closed (no PINGs).
import type { Socket } from 'node:net';
import { dialTcp } from '../steering/socket-options.js';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { MeshError } from '../core/errors.js';
import { upstreamError } from '../upstream/upstream-error.js';

/**
 * Makes the transport of one session: plain TCP (h2c, prior knowledge), or for an mTLS peer a
 * TLS socket negotiating ALPN "h2" (the session starts once the peer proved its identity).
 * May throw a MeshError (an mTLS endpoint while no identity is loaded).
 */
export type H2Dial = () => Socket;

export interface H2SessionPoolOptions {
  readonly address: string;
  readonly dial: H2Dial;
  readonly maxSessions: number;
  readonly keepAliveMs: number;
  readonly onOpen: () => void;
  readonly onClose: () => void;
}

interface Entry {
  readonly session: ClientHttp2Session;
  ready: boolean;
  /** Streams opened and not yet closed. */
  active: number;
  idle: NodeJS.Timeout | null;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (remoteSettings is a native call: read once per SETTINGS). */
  maxStreams: number;
  waiters: Waiter[];
  /** connectMs of the acquire that opened it (waiters moved to a new session reuse it). */
  readonly connectMs: number;
}

type Waiter = (e: MeshError | null, s: ClientHttp2Session | null) => void;

/** Before the peer's SETTINGS arrive, assume what most servers announce. */
const DEFAULT_MAX_STREAMS = 100;
/** Streams that may wait on one connecting session before another is dialled. */
const MAX_WAITING_PER_SESSION = 100;

export class H2SessionPool {
  private readonly entries: Entry[] = [];
  /** Every session of this pool, in rotation or not, until it closes (streams finish on it). */
  private readonly bySession = new WeakMap<ClientHttp2Session, Entry>();
  private closing = false;

  constructor(private readonly opts: H2SessionPoolOptions) {}

  get address(): string {
    return this.opts.address;
  }

  /**
   * Calls back with a connected session that has room for one more stream (counted until the
   * caller's stream closes: the caller must call `streamClosed` once). Connect failures and
   * timeouts come back as MeshErrors (retryable: nothing was sent).
   */
  acquire(connectMs: number, cb: Waiter): void {
    if (this.closing) {
      cb(new MeshError('MESH_ERR_UPSTREAM_REFUSED', `${this.opts.address}: the endpoint left the registry`), null);
      return;
    }
    let best: Entry | undefined;
    let connecting: Entry | undefined;
    for (const e of this.entries) {
      if (!e.ready) {
        if (e.waiters.length < MAX_WAITING_PER_SESSION && connecting === undefined) connecting = e;
        continue;
      }
      if (e.session.closed || e.session.destroyed) continue;
      if (e.active >= e.maxStreams) continue;
      if (best === undefined || e.active < best.active) best = e;
    }
    if (best !== undefined) return this.take(best, cb);
    if (connecting !== undefined) {
      connecting.waiters.push(cb);
      return;
    }
    if (this.entries.length < this.opts.maxSessions) {
      let entry: Entry;
      try {
        entry = this.open(connectMs);
      } catch (e) {
        cb(upstreamError(e, this.opts.address), null);
        return;
      }
      entry.waiters.push(cb);
      return;
    }
    // At the session cap and all full: the least-busy session queues the stream (nghttp2 holds
    // HEADERS until the peer allows another stream).
    let least: Entry | undefined;
    for (const e of this.entries) if (e.ready && (least === undefined || e.active < least.active)) least = e;
    if (least === undefined) {
      this.entries[0]!.waiters.push(cb);
      return;
    }
    this.take(least, cb);
  }

  private take(e: Entry, cb: Waiter): void {
    e.active += 1;
    if (e.idle !== null) {
      clearTimeout(e.idle);
      e.idle = null;
    }
    cb(null, e.session);
  }

  /** One stream handed out by acquire() closed. */
  streamClosed(session: ClientHttp2Session): void {
    const e = this.bySession.get(session);
    if (e === undefined) return;
    e.active -= 1;
    // A session already taken out of rotation (error, GOAWAY) closes with its last stream.
    if (!this.entries.includes(e)) {
      if (e.active === 0 && !session.closed && !session.destroyed) session.close();
      return;
    }
    this.armIdle(e);
  }

  /** A session with no streams closes after keepAliveMs unless a call takes it first. */
  private armIdle(e: Entry): void {
    if (e.active !== 0 || e.idle !== null) return;
    e.idle = setTimeout(() => {
      e.idle = null;
      if (e.active === 0) this.retire(e, true);
    }, this.opts.keepAliveMs);
    e.idle.unref();
  }

  private open(connectMs: number): Entry {
    const address = this.opts.address;
    const session = h2Connect(`http://${address}`, {
      createConnection: () => this.opts.dial(),
      settings: { enablePush: false },
      // Responses of many concurrent calls share this budget; beyond it nghttp2 refuses streams.
      maxSessionMemory: 32,
    });
    const entry: Entry = { session, ready: false, active: 0, idle: null, maxStreams: DEFAULT_MAX_STREAMS, waiters: [], connectMs };
    session.on('remoteSettings', () => (entry.maxStreams = maxStreams(session)));
    this.entries.push(entry);
    this.bySession.set(session, entry);
    this.opts.onOpen();
    const timer = setTimeout(() => fail(new MeshError('MESH_ERR_UPSTREAM_CONNECT_TIMEOUT', `${address}: connect timed out after ${connectMs} ms`)), connectMs);
    const fail = (err: MeshError): void => {
      clearTimeout(timer);
      this.remove(entry);
      session.destroy();
      for (const w of entry.waiters.splice(0)) w(err, null);
    };
    // Ready once the peer's SETTINGS arrived: until then its stream limit is unknown, and
    // streams over it would be refused.
    session.once('remoteSettings', () => {
      clearTimeout(timer);
      entry.ready = true;
      const ws = entry.waiters.splice(0);
      let i = 0;
      for (; i < ws.length && entry.active < entry.maxStreams; i++) this.take(entry, ws[i]!);
      // The rest go where acquire() sends them: another session, or a queue in nghttp2.
      for (; i < ws.length; i++) this.acquire(entry.connectMs, ws[i]!);
      // Its waiters may all have gone elsewhere: an unused session must still close when idle.
      this.armIdle(entry);
    });
    session.on('error', (e: unknown) => {
      if (!entry.ready) fail(upstreamError(e, address));
      else this.remove(entry);
    });
    // The peer stops taking new streams: running ones finish, new calls go to another session.
    session.on('goaway', () => {
      this.remove(entry);
      if (!session.closed) session.close();
    });
    session.once('close', () => {
      clearTimeout(timer);
      if (entry.idle !== null) clearTimeout(entry.idle);
      this.remove(entry);
      this.opts.onClose();
      if (entry.waiters.length > 0) {
        const err = new MeshError('MESH_ERR_UPSTREAM_RESET', `${address}: the HTTP/2 connection closed before it was ready`);
        for (const w of entry.waiters.splice(0)) w(err, null);
      }
    });
    return entry;
  }

  private remove(e: Entry): void {
    const i = this.entries.indexOf(e);
    if (i !== -1) this.entries.splice(i, 1);
  }

  private retire(e: Entry, graceful: boolean): void {
    this.remove(e);
    if (graceful) e.session.close();
    else e.session.destroy();
  }

  /** Gracefully: running streams finish. Force: cut now. */
  close(force: boolean): void {
    this.closing = true;
    for (const e of [...this.entries]) this.retire(e, !force);
  }
}

function maxStreams(s: ClientHttp2Session): number {
  const n = s.remoteSettings.maxConcurrentStreams;
  return n === undefined || n > 1_000_000 ? DEFAULT_MAX_STREAMS : n;
}

/** Plain TCP for h2c. */
export function tcpDial(host: string, port: number, mark?: number): H2Dial {
  // transparent.redirect.proxyMark: marked before the SYN, so capture skips the session.
  return () => dialTcp({ host, port, mark, noDelay: true, keepAlive: true });
}
