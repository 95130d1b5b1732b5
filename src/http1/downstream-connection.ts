// One downstream connection on an HTTP listener: reads request heads, runs one exchange at a
// time (pipelined requests wait their turn, so responses go out in order), and enforces the
// downstream timeouts: the whole head within timeouts.requestHeaderMs (408), and
// timeouts.downstreamIdleMs for an idle keep-alive connection or a stalled request body.
// Every malformed request gets a coded answer and a closed connection, never a crash.
import type { Socket } from 'node:net';
import type { Steering } from '../core/sidecar-context.js';
import { MeshError } from '../core/errors.js';
import { errorBody, ERROR_HEADER } from '../core/error-response.js';
import { RequestContext } from '../pipeline/request-context.js';
import { finishRequest } from '../pipeline/finish.js';
import { CR, LF } from './chars.js';
import { parseRequestHead, skipLeadingCrlf, type HeadLimits, type RequestHead } from './head.js';
import { requestBody, requestKeepsAlive, Body } from './framing.js';
import { ParseError } from './parse-error.js';
import { localResponse } from './serialize.js';
import { Exchange } from './exchange.js';
import type { HttpEngine } from './engine.js';
import { prefaceAt } from '../http2/preface.js';

const enum State {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** Forwarding a request body. */
  Body,
  /** The request is read; waiting for the response to finish. */
  Waiting,
  /** Handed over (CONNECT, upgrade): the engine no longer reads this socket. */
  Detached,
  /** Our side is closed or closing. */
  Closed,
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** Pipelined bytes read ahead while a response is pending, before reading pauses. */
const MAX_READ_AHEAD = 64 * 1024;
/** After our last response, how long a client that keeps sending gets before the socket is cut. */
const LINGER_MS = 2000;

export class DownstreamConnection {
  private state = State.Head;
  private buf: Buffer | null = null;
  /** Offset in buf up to which a head terminator was already searched for. */
  private scanned = 0;
  private exchange: Exchange | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private processing = false;
  private clientEnded = false;
  private closeAfter = false;
  private paused = false;
  /** No request has started on this connection yet (only then may it be HTTP/2). */
  private fresh = true;
  /** Kept: after the socket closes, Node no longer reports it. */
  readonly remoteAddress: string | undefined;

  constructor(
    readonly socket: Socket,
    readonly steering: Steering,
    readonly engine: HttpEngine,
  ) {
    this.remoteAddress = socket.remoteAddress;
    engine.connections.add(this);
    socket.setNoDelay(true);
    socket.setTimeout(engine.timeouts.downstreamIdleMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.exchange?.onDownstreamDrain());
    socket.on('timeout', () => this.onIdle());
    socket.resume();
  }

  get via(): string {
    return this.engine.via;
  }

  get limits(): HeadLimits {
    return this.engine.limits;
  }

  // ── reading ────────────────────────────────────────────────────────────────────────────

  private onData(chunk: Buffer): void {
    switch (this.state) {
      case State.Body: {
        const ex = this.exchange!;
        if (this.buf === null) {
          const stop = ex.onRequestBytes(chunk, 0, chunk.length);
          if (stop < chunk.length) this.buf = chunk.subarray(stop);
        } else {
          this.buf = Buffer.concat([this.buf, chunk]);
          this.feedBody(ex);
        }
        if (this.exchange === ex && ex.reqDone) this.state = State.Waiting;
        if ((this.state as State) === State.Head) this.process();
        return;
      }
      case State.Head:
        this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
        this.process();
        return;
      case State.Waiting:
        this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
        if (this.buf.length > MAX_READ_AHEAD) this.pauseReading();
        return;
      default:
        return; // closing: the client's late bytes are dropped
    }
  }

  private feedBody(ex: Exchange): void {
    const buf = this.buf!;
    const stop = ex.onRequestBytes(buf, 0, buf.length);
    this.buf = stop < buf.length ? buf.subarray(stop) : null;
  }

  /** Starts every complete request in the buffer, one at a time. */
  private process(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.state === State.Head && this.buf !== null && this.nextRequest()) {
        /* each turn starts one request; a local answer finishes it at once */
      }
    } finally {
      this.processing = false;
    }
    if (this.state === State.Head && this.clientEnded) this.close();
  }

  private nextRequest(): boolean {
    const buf = this.buf!;
    const s = skipLeadingCrlf(buf, 0, buf.length);
    if (s === buf.length) {
      this.buf = null;
      this.scanned = 0;
      return false;
    }
    if (this.fresh && s === 0 && this.engine.onHttp2 !== null) {
      const p = prefaceAt(buf, 0);
      if (p === 'yes') {
        this.handOverHttp2();
        return false;
      }
      if (p === 'maybe') {
        this.armHeaderTimer();
        return false;
      }
    }
    if (!this.worthParsing(buf, s)) {
      this.armHeaderTimer();
      return false;
    }
    let head: RequestHead | null;
    try {
      head = parseRequestHead(buf, s, buf.length, this.engine.limits);
    } catch (e) {
      this.rejectHead(e);
      return false;
    }
    if (head === null) {
      this.armHeaderTimer();
      return false;
    }
    this.clearHeaderTimer();
    const rest = s + head.headBytes;
    this.buf = rest < buf.length ? buf.subarray(rest) : null;
    this.scanned = 0;
    this.begin(head);
    return true;
  }

  /**
   * Parsing is linear in the head, so a head arriving a byte at a time is parsed only when it
   * can be complete, is over the limit, is new, or has a bare LF (refused at once).
   */
  private worthParsing(buf: Buffer, s: number): boolean {
    const from = this.scanned;
    this.scanned = buf.length;
    if (from === 0 || buf.length - s > this.engine.limits.maxHeaderBytes) return true;
    if (buf.indexOf(HEAD_END, Math.max(s, from - 3)) !== -1) return true;
    for (let j = Math.max(from, s + 1); j < buf.length; j++) if (buf[j] === LF && buf[j - 1] !== CR) return true;
    return false;
  }

  private begin(head: RequestHead): void {
    this.fresh = false;
    const e = this.engine;
    const ctx = this.newContext();
    ctx.method = head.method;
    ctx.path = head.target;
    ctx.authority = head.host ?? '';
    if (head.method === 'CONNECT' && e.onConnect !== null) {
      const rest = this.detach();
      e.onConnect(this.socket, head, rest);
      return;
    }
    e.inflight.count += 1;
    let ex: Exchange;
    try {
      if (head.method === 'CONNECT') throw new MeshError('MESH_ERR_BAD_REQUEST', `CONNECT is not served on the ${e.listener} listener`);
      const routed = e.router.route(head, ctx, this);
      ex = new Exchange(this, ctx, head, routed);
    } catch (err) {
      this.answerLocally(ctx, head, err);
      return;
    }
    this.exchange = ex;
    this.state = State.Body;
    // Body bytes already here go out with the head, in one write.
    if (this.buf !== null && !ex.reqDone) this.feedBody(ex);
    if (ex.reqDone) this.state = State.Waiting;
    ex.start();
  }

  /** A request refused before any upstream was chosen (no route, loop, bad host, ...). */
  private answerLocally(ctx: RequestContext, head: RequestHead, e: unknown): void {
    const err = e instanceof MeshError ? e : new MeshError('MESH_ERR_INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
    ctx.error = err;
    ctx.status = err.status;
    // An unread body would be taken for the next request: close instead.
    const keep = requestBody(head) === Body.None && !this.mustClose(head);
    this.writeError(err, !keep);
    this.engine.inflight.count -= 1;
    finishRequest(this.engine, ctx);
    if (!keep) this.close();
  }

  private rejectHead(e: unknown): void {
    this.clearHeaderTimer();
    this.refuseAndClose(headError(e));
  }

  private newContext(): RequestContext {
    const e = this.engine;
    return new RequestContext(e.listener, e.listener === 'inbound' ? 'inbound' : this.steering.mode, this.remoteAddress);
  }

  /** A refusal before any request could be read whole: answered, recorded, and the connection closed. */
  private refuseAndClose(err: MeshError): void {
    const ctx = this.newContext();
    ctx.error = err;
    ctx.status = err.status;
    this.writeError(err, true);
    finishRequest(this.engine, ctx);
    this.close();
  }

  // ── exchange callbacks ─────────────────────────────────────────────────────────────────

  mustClose(head: RequestHead): boolean {
    return this.closeAfter || this.clientEnded || !requestKeepsAlive(head) || this.engine.isDraining();
  }

  exchangeDone(ex: Exchange, keepAlive: boolean): void {
    if (this.exchange === ex) this.exchange = null;
    this.engine.inflight.count -= 1;
    finishRequest(this.engine, ex.ctx);
    if (this.state === State.Detached || this.state === State.Closed) return;
    if (!keepAlive || this.closeAfter || this.engine.isDraining()) {
      this.close();
      return;
    }
    this.state = State.Head;
    this.resumeReading();
    this.process();
  }

  write(data: string | Buffer): boolean {
    if (this.socket.destroyed) return true;
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  /** The sidecar's own answer: JSON body and x-dreammesh-error. */
  writeError(err: MeshError, close: boolean): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const text = localResponse(err.status, { 'content-type': 'application/json', [ERROR_HEADER]: err.code }, errorBody(err), close);
    this.socket.write(text, 'utf8');
  }

  pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ── handing over ───────────────────────────────────────────────────────────────────────

  /** Stops reading this socket; returns bytes already read past the request. */
  private detach(): Buffer | null {
    this.state = State.Detached;
    this.clearHeaderTimer();
    this.engine.connections.delete(this);
    for (const ev of ['data', 'end', 'error', 'close', 'drain', 'timeout']) this.socket.removeAllListeners(ev);
    // Until the new owner attaches its own: an error with no listener would end the process.
    this.socket.on('error', noop);
    this.socket.setTimeout(0);
    this.socket.pause();
    const rest = this.buf;
    this.buf = null;
    return rest;
  }

  /** Prior-knowledge HTTP/2: the bytes read so far go back into the socket for the HTTP/2 server. */
  private handOverHttp2(): void {
    const rest = this.detach();
    if (rest !== null) this.socket.unshift(rest);
    this.engine.onHttp2!(this.socket, this.steering);
  }

  /** The exchange switched protocols: the tunnel owns the socket from here. */
  detachForTunnel(): Buffer | null {
    return this.detach();
  }

  // ── endings and timeouts ───────────────────────────────────────────────────────────────

  /** Graceful stop: idle connections close now, busy ones after their response. */
  drain(): void {
    this.closeAfter = true;
    if (this.state === State.Head && this.buf === null) this.close();
  }

  private onEnd(): void {
    this.clientEnded = true;
    switch (this.state) {
      case State.Head:
        if (!this.processing) this.close();
        return;
      case State.Body:
        this.exchange?.onDownstreamGone();
        this.close();
        return;
      case State.Closed:
        this.socket.destroy();
        return;
      default:
        return; // Waiting: the response still goes out (half-close), then we close
    }
  }

  private onClose(): void {
    const wasDetached = this.state === State.Detached;
    this.state = State.Closed;
    this.clearHeaderTimer();
    if (!wasDetached) this.engine.connections.delete(this);
    this.exchange?.onDownstreamGone();
  }

  private onIdle(): void {
    const m = this.engine.metrics.downstreamTimeouts;
    switch (this.state) {
      case State.Head:
        if (this.buf === null) {
          m.inc({ listener: this.engine.listener, kind: 'idle' });
          this.socket.destroy();
        } else this.headTimeout();
        return;
      case State.Body:
        m.inc({ listener: this.engine.listener, kind: 'body' });
        this.exchange?.onDownstreamTimeout();
        return;
      case State.Closed:
        this.socket.destroy();
        return;
      default:
        return; // waiting for the upstream is timed by timeouts.requestMs
    }
  }

  private armHeaderTimer(): void {
    if (this.headTimer !== null) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = null;
      if (this.state === State.Head) this.headTimeout();
    }, this.engine.timeouts.requestHeaderMs);
  }

  private clearHeaderTimer(): void {
    if (this.headTimer !== null) {
      clearTimeout(this.headTimer);
      this.headTimer = null;
    }
  }

  private headTimeout(): void {
    this.engine.metrics.downstreamTimeouts.inc({ listener: this.engine.listener, kind: 'header' });
    this.refuseAndClose(new MeshError('MESH_ERR_REQUEST_HEADER_TIMEOUT', `the request head did not arrive within ${this.engine.timeouts.requestHeaderMs} ms`));
  }

  /** Ends our side after the last response; the client gets LINGER_MS to read it and close. */
  private close(): void {
    if (this.state === State.Closed || this.state === State.Detached) return;
    this.state = State.Closed;
    this.clearHeaderTimer();
    this.buf = null;
    if (this.socket.destroyed) return;
    if (this.clientEnded) {
      this.socket.end();
      this.socket.destroySoon();
      return;
    }
    this.socket.end();
    this.socket.resume();
    this.socket.setTimeout(LINGER_MS);
  }
}

function noop(): void {}

function headError(e: unknown): MeshError {
  if (!(e instanceof ParseError)) return new MeshError('MESH_ERR_INTERNAL', String(e), { cause: e });
  switch (e.code) {
    case 'HEADERS_TOO_LARGE':
    case 'TOO_MANY_HEADERS':
      return new MeshError('MESH_ERR_HEADERS_TOO_LARGE', e.reason);
    case 'URI_TOO_LONG':
      return new MeshError('MESH_ERR_URI_TOO_LONG', e.reason);
    case 'MISSING_HOST':
    case 'DUPLICATE_HOST':
      return new MeshError('MESH_ERR_BAD_HOST', e.reason);
    default:
      return new MeshError('MESH_ERR_BAD_REQUEST', `malformed request: ${e.code}: ${e.reason}`);
  }
}
