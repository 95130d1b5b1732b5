// One request/response exchange between a downstream connection and a pooled upstream
// connection: the rewritten head goes up, the request body follows with its framing
// unchanged, the response head is parsed and rewritten, and the response body streams back,
// with backpressure both ways. Retries happen only where nothing reached the application
// (a refused connect, or a reused keep-alive connection the upstream had just closed).
// Faults of the client or of the sidecar never count against the endpoint.
import type { EndpointLease } from '../core/sidecar-context.js';
import { MeshError } from '../core/errors.js';
import type { EndpointPool, PoolWaiter } from '../upstream/endpoint-pool.js';
import type { UpstreamConnection, UpstreamUser } from '../upstream/upstream-connection.js';
import type { RequestContext } from '../pipeline/request-context.js';
import { ChunkedDecoder } from './chunked.js';
import { Body, requestBody, responseBody, responseKeepsAlive } from './framing.js';
import type { RequestHead, ResponseHead } from './head.js';
import { ResponseHeadReader, type HeadRead } from './response-head-reader.js';
import type { RoutedRequest } from './engine.js';
import { ParseError } from './parse-error.js';
import { downstreamResponseHead, upstreamRequestHead } from './serialize.js';
import type { DownstreamConnection } from './downstream-connection.js';
import { startUpgradeTunnel } from './upgrade-tunnel.js';
import { writeKept } from '../upstream/read-buffer.js';
import { tlsUpstreamError } from '../tls/outbound-tls.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Request body bytes held while the upstream connection is being made, before pausing the client. */
const MAX_EARLY_BODY = 64 * 1024;
/** Responses up to this size are copied behind their head and written at once. */
const SMALL_BODY = 16 * 1024;
/** Reused connections found closed by the upstream, retried on a fresh one. */
const MAX_STALE_RETRIES = 2;

export class Exchange implements PoolWaiter, UpstreamUser {
  private readonly reqKind: Body;
  private reqRemaining: number;
  private reqDecoder: ChunkedDecoder | null = null;
  /** The whole request has been read from the downstream. */
  reqDone: boolean;
  private early: Buffer[] | null = null;
  private earlyBytes = 0;
  private up: UpstreamConnection | null = null;
  private pool: EndpointPool | null = null;
  private lease: EndpointLease | null = null;
  private waitingPool = false;
  private tried: Set<string> | null = null;
  private staleRetries = 0;
  /** The current upstream connection had served earlier exchanges (it came from the pool). */
  private upReused = false;
  /** The current upstream connection is mTLS (another sidecar's inbound listener). */
  private upTls = false;
  private lastError: MeshError | undefined;
  private headText = '';
  private readonly heads: ResponseHeadReader;
  private respHead: ResponseHead | null = null;
  private respKind: Body = Body.None;
  private respRemaining = 0;
  private respDecoder: ChunkedDecoder | null = null;
  private respDone = false;
  /** The chunked response is decoded for an HTTP/1.0 client. */
  private dechunk = false;
  private sawResponseBytes = false;
  /** The final response head went downstream: errors can only cut the connection now. */
  responseStarted = false;
  private closeAfter = false;
  private timer: NodeJS.Timeout | null = null;
  private pausedDown = false;
  private finished = false;

  constructor(
    private readonly dc: DownstreamConnection,
    readonly ctx: RequestContext,
    private readonly head: RequestHead,
    private readonly routed: RoutedRequest,
  ) {
    this.reqKind = requestBody(head);
    this.reqRemaining = this.reqKind === Body.Length ? head.contentLength : 0;
    if (this.reqKind === Body.Chunked) this.reqDecoder = new ChunkedDecoder(dc.limits);
    this.reqDone = this.reqKind === Body.None;
    this.heads = new ResponseHeadReader(dc.engine.responseLimits);
    this.closeAfter = dc.mustClose(head);
    const h = upstreamRequestHead({ head, path: routed.path, host: routed.host, remoteAddress: dc.remoteAddress, via: dc.via, upgrade: routed.upgrade, extra: routed.extra });
    this.headText = h.text;
    ctx.requestId = h.requestId;
  }

  start(): void {
    // Once per request, not per attempt: the retry budget is a share of requests.
    this.routed.target.budget?.recordRequest();
    this.attempt();
  }

  // ── upstream connection ────────────────────────────────────────────────────────────────

  private attempt(): void {
    const t = this.routed.target;
    let lease: EndpointLease;
    try {
      lease = t.pick(this.tried ?? EMPTY);
    } catch (e) {
      // Nowhere (else) to go: report the last real failure if there was one.
      this.fail(this.lastError ?? (e as MeshError));
      return;
    }
    this.lease = lease;
    this.ctx.attempts += 1;
    this.ctx.endpoint = lease.endpoint.address;
    this.pool = t.pool(lease.endpoint);
    this.waitingPool = true;
    this.pool.acquire(this, t.pending, t.policy.connectMs);
  }

  onUpstream(c: UpstreamConnection): void {
    this.waitingPool = false;
    if (this.finished) {
      this.pool!.release(c, true);
      return;
    }
    this.up = c;
    this.upReused = c.served > 0;
    this.upTls = 'encrypted' in c.socket;
    this.sawResponseBytes = false;
    c.user = this;
    const s = c.socket;
    s.cork();
    s.write(this.headText, 'latin1');
    if (this.early !== null) {
      for (const b of this.early) s.write(b);
      this.early = null;
      this.earlyBytes = 0;
    }
    s.uncork();
    if (this.pausedDown) this.resumeDown();
    if (this.reqDone) this.startTimer();
  }

  onUpstreamError(e: MeshError): void {
    this.waitingPool = false;
    if (this.finished) return;
    const err = this.routed.target.mapError?.(e) ?? e;
    this.lease?.release(err.code === 'MESH_ERR_LIMIT_EXCEEDED');
    this.lease = null;
    this.lastError = err;
    if (err.retryable && this.canRetry()) {
      const t = this.routed.target;
      if (t.budget !== undefined && !t.budget.tryRetry()) {
        this.dc.engine.metrics.retries.inc({ service: t.service, outcome: 'budget-exhausted' });
      } else {
        this.dc.engine.metrics.retries.inc({ service: t.service, outcome: 'attempted' });
        (this.tried ??= new Set()).add(this.ctx.endpoint ?? '');
        this.attempt();
        return;
      }
    }
    this.fail(err);
  }

  /** Only requests whose every byte is still here and whose repetition is harmless. */
  private canRetry(): boolean {
    return this.reqKind === Body.None && IDEMPOTENT.has(this.head.method) && this.ctx.attempts <= this.routed.target.policy.retryAttempts && !this.responseStarted;
  }

  // ── request body (downstream → upstream) ───────────────────────────────────────────────

  /** Takes request body bytes from buf[start, end); returns where this request's body ended. */
  onRequestBytes(buf: Buffer, start: number, end: number): number {
    let stop = end;
    if (this.reqKind === Body.Length) {
      const n = Math.min(this.reqRemaining, end - start);
      this.reqRemaining -= n;
      stop = start + n;
      if (this.reqRemaining === 0) this.reqDone = true;
    } else if (this.reqKind === Body.Chunked) {
      try {
        stop = this.reqDecoder!.feed(buf, start, end);
      } catch (e) {
        this.failDownstream(e);
        return end;
      }
      if (this.reqDecoder!.done) this.reqDone = true;
    }
    if (stop > start) this.sendUp(start === 0 && stop === buf.length ? buf : buf.subarray(start, stop));
    if (this.reqDone && this.up !== null) this.startTimer();
    return stop;
  }

  private sendUp(b: Buffer): void {
    if (this.finished || this.respDone) return;
    if (this.up === null) {
      (this.early ??= []).push(b);
      this.earlyBytes += b.length;
      if (this.earlyBytes > MAX_EARLY_BODY) this.pauseDown();
      return;
    }
    if (!this.up.socket.write(b)) this.pauseDown();
  }

  private pauseDown(): void {
    this.pausedDown = true;
    this.dc.pauseReading();
  }

  private resumeDown(): void {
    this.pausedDown = false;
    this.dc.resumeReading();
  }

  onUpstreamDrain(): void {
    if (this.pausedDown) this.resumeDown();
  }

  // ── response (upstream → downstream) ───────────────────────────────────────────────────

  onUpstreamData(chunk: Buffer): boolean {
    if (this.finished) return false;
    const out = this.dc.socket;
    const queuedBefore = out.writableLength > 0;
    this.onResponseBytes(chunk);
    return writeKept(out, queuedBefore);
  }

  private onResponseBytes(chunk: Buffer): void {
    this.sawResponseBytes = true;
    if (this.respDone) {
      // Bytes after a complete response: the connection is not trusted any more.
      this.up?.destroy();
      return;
    }
    let buf = chunk;
    let i = 0;
    if (this.respHead === null) {
      for (;;) {
        let r: HeadRead;
        try {
          r = this.heads.read(buf, i);
        } catch (e) {
          const reason = e instanceof ParseError ? `${e.code}: ${e.reason}` : String(e);
          this.fail(new MeshError('MESH_ERR_UPSTREAM_PROTOCOL', `${this.ctx.endpoint ?? 'upstream'}: invalid response (${reason})`));
          return;
        }
        if (r === null) return; // the reader keeps the partial head
        const head = r.head;
        buf = r.buf;
        i = r.next;
        if (head.status === 101) {
          this.switchProtocols(head, buf.subarray(i));
          return;
        }
        if (head.status >= 200) {
          this.startResponse(head, buf, i);
          return;
        }
        // A 1xx that closes the connection leaves no way for the final response to arrive.
        if (!responseKeepsAlive(head)) {
          this.fail(new MeshError('MESH_ERR_UPSTREAM_PROTOCOL', `${this.ctx.endpoint ?? 'upstream'}: a ${head.status} response closed the connection before the final response`));
          return;
        }
        // 1xx informational (100 Continue, 103 Early Hints): relayed; HTTP/1.0 clients never see them.
        if (this.head.versionMinor === 1) this.dc.write(downstreamResponseHead(head, this.dc.via, false));
        if (i === buf.length) return;
      }
    }
    this.relayBody(buf, i);
  }

  private startResponse(head: ResponseHead, buf: Buffer, i: number): void {
    this.clearTimer();
    this.respHead = head;
    this.respKind = responseBody(head, this.head.method);
    this.respRemaining = this.respKind === Body.Length ? head.contentLength : 0;
    // An HTTP/1.0 client cannot read chunked (RFC 9112 §6.1): it gets the decoded bytes, and
    // the end of the body is the end of the connection.
    const dechunk = this.respKind === Body.Chunked && this.head.versionMinor === 0;
    if (this.respKind === Body.Chunked) {
      this.respDecoder = new ChunkedDecoder(this.dc.engine.responseLimits, dechunk ? (b, s, e) => this.writeDecoded(b, s, e) : null);
      this.dechunk = dechunk;
    }
    // Close the downstream after this response when the client or the upstream asks for it,
    // the body ends only with the connection, or the request was not read to its end.
    if (this.respKind === Body.UntilClose || !this.reqDone || dechunk) this.closeAfter = true;
    this.ctx.status = head.status;
    this.responseStarted = true;
    const text = downstreamResponseHead(head, this.dc.via, this.closeAfter, this.head.versionMinor === 0, dechunk);
    if (this.respKind === Body.None) {
      this.dc.write(text);
      this.respDone = true;
      if (i < buf.length) this.up?.destroy(); // bytes after a bodiless response
      this.maybeComplete();
      return;
    }
    // A small response goes out with its head in one buffer: one write, no writev.
    if (this.respKind === Body.Length && head.contentLength <= buf.length - i && head.contentLength <= SMALL_BODY) {
      const n = head.contentLength;
      const out = Buffer.allocUnsafe(text.length + n);
      out.write(text, 0, 'latin1');
      buf.copy(out, text.length, i, i + n);
      this.respRemaining = 0;
      this.respDone = true;
      this.dc.write(out);
      if (i + n < buf.length) this.up?.destroy(); // more bytes than the response framing allows
      this.maybeComplete();
      return;
    }
    this.dc.cork();
    this.dc.write(text);
    this.relayBody(buf, i);
    this.dc.uncork();
  }

  private relayBody(buf: Buffer, i: number): void {
    if (i >= buf.length) return;
    let stop = buf.length;
    if (this.respKind === Body.Length) {
      const n = Math.min(this.respRemaining, buf.length - i);
      this.respRemaining -= n;
      stop = i + n;
      if (this.respRemaining === 0) this.respDone = true;
    } else if (this.respKind === Body.Chunked) {
      try {
        stop = this.respDecoder!.feed(buf, i, buf.length);
      } catch (e) {
        const reason = e instanceof ParseError ? `${e.code}: ${e.reason}` : String(e);
        this.fail(new MeshError('MESH_ERR_UPSTREAM_PROTOCOL', `${this.ctx.endpoint ?? 'upstream'}: invalid chunked body (${reason})`));
        return;
      }
      if (this.respDecoder!.done) this.respDone = true;
      if (this.dechunk) {
        // The decoder already wrote the data; framing bytes and trailers stay behind.
        if (stop < buf.length) this.up?.destroy();
        if (this.respDone) this.maybeComplete();
        return;
      }
    }
    if (stop > i && !this.dc.write(i === 0 && stop === buf.length ? buf : buf.subarray(i, stop))) this.up?.socket.pause();
    if (stop < buf.length) this.up?.destroy(); // more bytes than the response framing allows
    if (this.respDone) this.maybeComplete();
  }

  private writeDecoded(b: Buffer, start: number, end: number): void {
    if (end > start && !this.dc.write(b.subarray(start, end))) this.up?.socket.pause();
  }

  /** The downstream took everything written so far. */
  onDownstreamDrain(): void {
    this.up?.socket.resume();
  }

  onUpstreamEnd(): void {
    if (this.finished) return;
    if (this.respHead !== null && this.respKind === Body.UntilClose) {
      this.respDone = true;
      this.maybeComplete();
      return;
    }
    this.upstreamGone(undefined);
  }

  onUpstreamClose(error: NodeJS.ErrnoException | undefined): void {
    this.up = null;
    if (this.finished) return;
    if (this.respHead !== null && this.respKind === Body.UntilClose && error === undefined) {
      this.respDone = true;
      this.maybeComplete();
      return;
    }
    this.upstreamGone(error);
  }

  private upstreamGone(error: NodeJS.ErrnoException | undefined): void {
    // A keep-alive connection the upstream closed just as we reused it: nothing was processed.
    if (this.upReused && !this.sawResponseBytes && this.reqKind === Body.None && IDEMPOTENT.has(this.head.method) && this.staleRetries < MAX_STALE_RETRIES) {
      this.staleRetries += 1;
      this.dropUpstream();
      this.lease?.release(true);
      this.lease = null;
      this.ctx.attempts -= 1;
      this.attempt();
      return;
    }
    // TLS 1.3: the server checks our certificate after our handshake finished, so its refusal
    // arrives on the first read: an alert, or the connection closed on a fresh connection.
    // Nothing reached its app: another endpoint may serve.
    const where = this.ctx.endpoint ?? 'upstream';
    const refused = this.sawResponseBytes
      ? undefined
      : (tlsUpstreamError(error, where) ??
        (this.upTls && !this.upReused
          ? new MeshError(
              'MESH_ERR_TLS_HANDSHAKE',
              `${where}: the peer closed the new mTLS connection before answering${error?.code !== undefined ? ` (${error.code})` : ''}: it probably refused this sidecar's certificate`,
            )
          : undefined));
    if (refused !== undefined) {
      this.dropUpstream();
      this.onUpstreamError(refused);
      return;
    }
    const what = this.respHead === null ? 'before a response' : 'before the response was complete';
    this.fail(new MeshError('MESH_ERR_UPSTREAM_RESET', `${this.ctx.endpoint ?? 'upstream'} closed the connection ${what}${error?.code !== undefined ? ` (${error.code})` : ''}`));
  }

  onUpstreamTimeout(): void {
    if (this.finished) return;
    // Waiting for the client's body is the downstream's idle timeout, not the upstream's fault.
    if (!this.reqDone && this.respHead === null) return;
    this.fail(new MeshError('MESH_ERR_UPSTREAM_TIMEOUT', `${this.ctx.endpoint ?? 'upstream'}: no bytes for ${this.routed.target.policy.idleMs} ms`));
  }

  private startTimer(): void {
    const ms = this.routed.target.policy.requestMs;
    if (ms <= 0 || this.timer !== null || this.respHead !== null || this.finished) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fail(new MeshError('MESH_ERR_UPSTREAM_TIMEOUT', `${this.ctx.endpoint ?? 'upstream'}: no response within ${ms} ms`));
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  // ── upgrade ────────────────────────────────────────────────────────────────────────────

  private switchProtocols(head: ResponseHead, rest: Buffer): void {
    this.clearTimer();
    const up = this.up;
    if (!this.routed.upgrade || up === null) {
      this.fail(new MeshError('MESH_ERR_UPSTREAM_PROTOCOL', `${this.ctx.endpoint ?? 'upstream'}: 101 Switching Protocols to a request that asked for no upgrade`));
      return;
    }
    this.finished = true;
    this.responseStarted = true;
    this.ctx.status = 101;
    this.ctx.upgraded = true;
    this.lease?.release(true);
    this.lease = null;
    this.up = null;
    this.pool!.detach(up);
    this.dc.write(downstreamResponseHead(head, this.dc.via, false));
    if (rest.length > 0) this.dc.write(rest);
    startUpgradeTunnel(this.dc, up.socket, this.ctx);
  }

  // ── endings ────────────────────────────────────────────────────────────────────────────

  private maybeComplete(): void {
    if (!this.respDone || this.finished) return;
    this.clearTimer();
    const up = this.up;
    this.up = null;
    if (up !== null) {
      up.socket.resume();
      const reusable = this.reqDone && this.head.versionMinor === 1 && responseKeepsAlive(this.respHead!);
      this.pool!.release(up, reusable);
    }
    this.lease?.release(this.ctx.status < 500);
    this.lease = null;
    this.end(!this.closeAfter && this.reqDone);
  }

  /** The request was refused before or instead of being forwarded (or forwarding failed). */
  fail(err: MeshError): void {
    if (this.finished) return;
    this.clearTimer();
    this.ctx.error = err;
    this.dropUpstream();
    this.lease?.release(err.origin !== 'upstream');
    this.lease = null;
    if (this.responseStarted) {
      this.dc.destroy();
      this.end(false);
      return;
    }
    this.ctx.status = err.status;
    // The rest of the request body is unread: the connection cannot carry another request.
    const keep = this.reqDone && !this.closeAfter;
    this.dc.writeError(err, !keep);
    this.end(keep);
  }

  /** Bad framing in the request body, found while forwarding it. */
  private failDownstream(e: unknown): void {
    const reason = e instanceof ParseError ? `${e.code}: ${e.reason}` : String(e);
    this.fail(new MeshError('MESH_ERR_BAD_REQUEST', `malformed request body (${reason})`));
  }

  /** The client went away (closed, reset, or its body ended early). */
  onDownstreamGone(): void {
    if (this.finished) return;
    this.clearTimer();
    this.ctx.error = new MeshError('MESH_ERR_DOWNSTREAM_ABORTED');
    this.ctx.status = 499;
    this.dropUpstream();
    this.lease?.release(true);
    this.lease = null;
    this.end(false);
  }

  /** The client stopped sending its body for timeouts.downstreamIdleMs. */
  onDownstreamTimeout(): void {
    if (this.finished || this.reqDone) return;
    this.fail(new MeshError('MESH_ERR_DOWNSTREAM_TIMEOUT', `the request body stalled for ${this.dc.engine.timeouts.downstreamIdleMs} ms`));
  }

  private dropUpstream(): void {
    if (this.waitingPool) {
      this.pool?.cancel(this);
      this.waitingPool = false;
    }
    const up = this.up;
    this.up = null;
    if (up !== null) {
      up.user = null;
      up.destroy();
    }
  }

  private end(keepAlive: boolean): void {
    this.finished = true;
    this.early = null;
    this.dc.exchangeDone(this, keepAlive);
  }
}

const EMPTY: ReadonlySet<string> = new Set();
