// Downstream HTTP/2 (h2c, prior knowledge) for the outbound listener. One node:http2 server
// object, fed sockets that steering already classified: explicit connections whose first bytes
// are the connection preface, CONNECT tunnels to a mesh service that carry the preface (proxy
// mode) and captured connections detected as HTTP/2 (transparent). Every stream becomes an
// H2Call. Sessions that break the limits (h2-limits.ts) end with GOAWAY and are counted in
// dreammesh_h2_goaway_total{reason}.
import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { H2Engine } from './h2-engine.js';
import type { H2ConnectionInfo } from './h2-target.js';
import { H2Call } from './h2-call.js';
import { h2ServerOptions, MAX_CLIENT_RESETS_PER_SECOND, MAX_REFUSED_HEADER_BLOCKS } from './h2-limits.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = constants;

interface SessionState {
  readonly info: H2ConnectionInfo;
  /** Streams not yet closed. */
  active: number;
  /** Client resets in the current one-second window. */
  resets: number;
  windowStart: number;
  /** Streams whose headers arrived whole ('stream' events). */
  streams: number;
  ended: boolean;
}

/** How often sessions are checked for header blocks nghttp2 refused (no JS event exists for them). */
const SWEEP_MS = 250;

export class H2Downstream {
  private readonly server: Http2Server;
  /** Set only while server.emit('connection') runs: the server creates the session synchronously. */
  private adopting: H2ConnectionInfo | null = null;
  private readonly sessions = new Map<ServerHttp2Session, SessionState>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly engine: H2Engine,
    private readonly log: Logger,
  ) {
    this.server = createServer(h2ServerOptions(engine.limits));
    this.server.on('session', (s: ServerHttp2Session) => this.onSession(s));
    // Errors nghttp2 reports for a session (bad frames, floods) end that session only.
    this.server.on('sessionError', () => {});
  }

  /** Takes over a socket whose next bytes are the HTTP/2 connection preface (already unshifted). */
  adopt(socket: Socket, info: H2ConnectionInfo): void {
    if (this.engine.isDraining()) {
      socket.destroy();
      return;
    }
    this.adopting = info;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.adopting = null;
    }
    // No resume(): the session reads the buffered bytes on the next tick and then takes the
    // handle; a flowing socket would emit those bytes to nobody first.
  }

  private onSession(session: ServerHttp2Session): void {
    const info = this.adopting ?? { steering: { mode: 'explicit' as const }, remoteAddress: undefined };
    const st: SessionState = { info, active: 0, resets: 0, windowStart: Date.now(), streams: 0, ended: false };
    this.sessions.set(session, st);
    if (this.sweeper === null) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
    session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.onStream(session, st, stream, headers));
    session.on('error', (e: Error & { code?: string }) => {
      this.endSession(session, st, reasonOf(e), false);
    });
    session.on('frameError', () => {});
    session.once('close', () => {
      this.sessions.delete(session);
      if (this.sessions.size === 0 && this.sweeper !== null) {
        clearInterval(this.sweeper);
        this.sweeper = null;
      }
    });
    // Idle connections (no streams) close after downstreamIdleMs; busy quiet ones stay.
    session.setTimeout(this.engine.timeouts.downstreamIdleMs, () => {
      if (st.active === 0) session.close();
    });
    if (this.engine.isDraining()) session.close();
  }

  private onStream(session: ServerHttp2Session, st: SessionState, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // A stream closed with an error code emits 'error': never let that reach the process.
    stream.on('error', noop);
    if (st.ended) {
      stream.close(NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    st.active += 1;
    st.streams += 1;
    stream.once('close', () => {
      st.active -= 1;
      const code = stream.rstCode;
      // Our own resets use INTERNAL_ERROR; anything else non-zero came from the client.
      if (code !== undefined && code !== NGHTTP2_NO_ERROR && code !== NGHTTP2_INTERNAL_ERROR) this.countReset(session, st);
    });
    new H2Call(this.engine, stream, headers, st.info).start();
  }

  /** Rapid reset (CVE-2023-44487): streams opened and cancelled faster than any real client does. */
  private countReset(session: ServerHttp2Session, st: SessionState): void {
    const now = Date.now();
    if (now - st.windowStart >= 1000) {
      st.windowStart = now;
      st.resets = 0;
    }
    st.resets += 1;
    if (st.resets > MAX_CLIENT_RESETS_PER_SECOND) this.endSession(session, st, 'rapid-reset', true);
  }

  /**
   * Header blocks over maxHeaderListSize / maxHeaderListPairs (oversized lists, HPACK bombs) are
   * refused by nghttp2 with RST_STREAM before any JS event: they show as client streams the
   * session processed that never became 'stream' events. A few are a buggy client; more end it.
   */
  private sweep(): void {
    for (const [session, st] of this.sessions) {
      if (st.ended || session.destroyed) continue;
      const last = session.state.lastProcStreamID ?? 0;
      const opened = last > 0 ? (last + 1) / 2 : 0;
      if (opened - st.streams > MAX_REFUSED_HEADER_BLOCKS) this.endSession(session, st, 'header-limit', true);
    }
  }

  private endSession(session: ServerHttp2Session, st: SessionState, reason: string, sendGoaway: boolean): void {
    if (st.ended) return;
    st.ended = true;
    this.engine.metrics.h2Goaway.inc({ reason });
    this.log.info({ reason, downstream: st.info.remoteAddress }, 'HTTP/2 connection ended');
    if (sendGoaway && !session.destroyed) {
      try {
        session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
      } catch {
        /* already closing */
      }
    }
    // The GOAWAY goes out first; then the connection is cut (no waiting on an abusive peer).
    setImmediate(() => session.destroy());
  }

  /** Graceful stop: GOAWAY to every session; running streams finish. */
  drain(): void {
    for (const s of this.sessions.keys()) if (!s.closed) s.close();
  }
}

function noop(): void {}

function reasonOf(e: Error & { code?: string }): string {
  const msg = e.message ?? '';
  if (/flood/i.test(msg)) return 'flood';
  if (/CONTINUATION/i.test(msg)) return 'continuation';
  switch (e.code) {
    case 'ERR_HTTP2_SESSION_ERROR':
      return 'protocol-error';
    case 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES':
      return 'invalid-frames';
    case 'ERR_HTTP2_MAX_PENDING_SETTINGS_ACK':
      return 'settings';
    case 'ERR_HTTP2_PING_CANCEL':
    case 'ERR_HTTP2_PING_LENGTH':
      return 'ping';
    default:
      return 'error';
  }
}
