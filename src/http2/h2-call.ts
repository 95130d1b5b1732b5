// One HTTP/2 stream (one gRPC call) forwarded upstream: routed like an HTTP/1 request (same
// router, same RequestContext, same finish()), balanced per call over multiplexed upstream
// sessions, with the client's grpc-timeout as the call's deadline. A call is retried on
// another endpoint only when nothing reached an application: the connect failed, or the
// upstream refused the stream (REFUSED_STREAM) while its request body is still held here.
// Errors made here are gRPC errors for gRPC requests (Trailers-Only, grpc-status) and the
// usual JSON answers otherwise.
import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { EndpointLease } from '../core/sidecar-context.js';
import type { ForwardTarget } from '../upstream/forward-target.js';
import type { H2SessionPool } from './h2-session-pool.js';
import type { H2Engine } from './h2-engine.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { ERROR_HEADER, errorBody } from '../core/error-response.js';
import { RequestContext } from '../pipeline/request-context.js';
import { finishRequest } from '../pipeline/finish.js';
import { upstreamError } from '../upstream/upstream-error.js';
import type { H2ConnectionInfo } from './h2-target.js';
import { h2ResponseHeaders, h2Trailers, h2UpstreamHeaders } from './h2-headers.js';
import { GrpcStatus, grpcMessage, grpcStatusOf, grpcTimeoutMs, isGrpc } from './grpc.js';
import { Http1UpstreamStream } from './h1-upstream-stream.js';
import { EGRESS_SERVICE } from '../routing/outbound-router.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_FLAG_END_STREAM } = constants;
/** Request body kept for a replay after REFUSED_STREAM; a larger body makes the call unretryable. */
const MAX_REPLAY_BYTES = 64 * 1024;
const EMPTY: ReadonlySet<string> = new Set();

export class H2Call {
  private readonly ctx: RequestContext;
  private readonly grpc: boolean;
  private target: ForwardTarget | null = null;
  private lease: EndpointLease | null = null;
  private up: ClientHttp2Stream | null = null;
  private upHeaders: OutgoingHttpHeaders | null = null;
  private tried: Set<string> | null = null;
  /** Copies of the request body sent so far, for a replay; null once too large. */
  private replay: Buffer[] | null = [];
  private replayBytes = 0;
  private reading = false;
  private downEnded: boolean;
  private responded = false;
  private upEnded = false;
  /** The downstream got its last frame (or an error answer). */
  private completed = false;
  private finished = false;
  private trailers: OutgoingHttpHeaders | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastError: MeshError | null = null;
  private upError: unknown = null;

  constructor(
    private readonly engine: H2Engine,
    private readonly down: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly info: H2ConnectionInfo,
  ) {
    this.ctx = new RequestContext(engine.listener, engine.listener === 'inbound' ? 'inbound' : info.steering.mode, info.remoteAddress);
    this.ctx.method = String(headers[':method'] ?? '');
    this.ctx.path = String(headers[':path'] ?? '');
    this.ctx.authority = String(headers[':authority'] ?? headers.host ?? '');
    this.grpc = isGrpc(headers);
    this.downEnded = down.endAfterHeaders;
  }

  start(): void {
    const e = this.engine;
    e.inflight.count += 1;
    this.down.on('error', () => {});
    this.down.once('close', () => this.onDownClose());
    let target: ForwardTarget;
    try {
      if (e.isDraining()) throw new MeshError('MESH_ERR_DRAINING', 'the sidecar is shutting down');
      if (this.ctx.method === 'CONNECT') throw new MeshError('MESH_ERR_BAD_REQUEST', 'CONNECT over HTTP/2 is not served');
      const r = e.router.routeStream(this.headers, this.info, this.ctx);
      target = r.target;
      const h = h2UpstreamHeaders(this.headers, r.authority, r.path, this.info.remoteAddress, e.via, r.caller);
      this.upHeaders = h.headers;
      this.ctx.requestId = h.requestId;
    } catch (err) {
      this.fail(toMeshError(err));
      return;
    }
    this.target = target;
    target.budget?.recordRequest();
    this.armTimer(target);
    this.attempt();
  }

  /**
   * gRPC: the client's deadline for the whole call. Other requests: requestMs for the response
   * head, counted from the end of the request body (as for HTTP/1).
   */
  private armTimer(target: ForwardTarget): void {
    if (this.grpc) {
      const ms = grpcTimeoutMs(this.headers['grpc-timeout']);
      if (ms === undefined) return;
      this.timer = setTimeout(() => this.fail(new MeshError('MESH_ERR_DEADLINE_EXCEEDED', `the call's deadline (grpc-timeout ${String(this.headers['grpc-timeout'])}) passed`)), Math.max(1, Math.ceil(ms)));
      return;
    }
    const ms = target.policy.requestMs;
    if (ms > 0 && this.downEnded && !this.responded && this.timer === null) this.timer = setTimeout(() => this.fail(new MeshError('MESH_ERR_UPSTREAM_TIMEOUT', `no response head within ${ms} ms`)), ms);
  }

  private attempt(): void {
    const t = this.target!;
    let lease: EndpointLease;
    try {
      lease = t.pick(this.tried ?? EMPTY);
    } catch (e) {
      this.fail(this.lastError ?? toMeshError(e));
      return;
    }
    this.lease = lease;
    const ep = lease.endpoint;
    this.ctx.attempts += 1;
    this.ctx.endpoint = ep.address;
    // Hosts outside the mesh rarely speak h2c on a plain port: plain requests to them go as
    // HTTP/1.1; gRPC needs HTTP/2 whatever the destination.
    const protocol = ep.protocol ?? (t.service === EGRESS_SERVICE && !this.grpc ? 'http1' : 'auto');
    if (protocol === 'http1') {
      // gRPC needs HTTP/2 end to end (trailers, streams); plain requests are bridged to HTTP/1.1.
      if (this.grpc) {
        // A config mismatch, not a failing endpoint: no outlier strike.
        lease.release(true);
        this.lease = null;
        this.fail(new MeshError('MESH_ERR_UPSTREAM_PROTOCOL', `endpoint ${ep.address} speaks only HTTP/1.1 (protocol: http1); gRPC needs an http2 or auto endpoint`));
        return;
      }
      let h1: Http1UpstreamStream;
      try {
        h1 = new Http1UpstreamStream(ep, this.upHeaders!, this.engine.http1Agent, this.downEnded && this.replayBytes === 0, t.h1Dial?.(ep));
      } catch (e) {
        // An mTLS endpoint while no identity is loaded: nothing was sent.
        this.attemptFailed(upstreamError(e, ep.address), true);
        return;
      }
      // Same events and methods as a client stream, as far as this class uses them.
      this.wire(h1 as unknown as ClientHttp2Stream, () => {});
      return;
    }
    if (t.h2Pool === undefined) {
      this.fail(new MeshError('MESH_ERR_INTERNAL', 'this route has no HTTP/2 upstream'));
      return;
    }
    const pool = t.h2Pool(ep);
    // limits.maxPendingRequests: calls waiting for a session, as HTTP/1 requests wait for a connection.
    const pending = t.pending;
    if (pending.count >= pending.max) {
      // Not the endpoint's fault: the lease is released as a success when the call closes.
      this.fail(new MeshError('MESH_ERR_LIMIT_EXCEEDED', `${pending.max} requests already wait for a connection (limits.maxPendingRequests)`));
      return;
    }
    pending.count += 1;
    pool.acquire(t.policy.connectMs, (err, session) => {
      pending.count -= 1;
      this.onSession(pool, err, session);
    });
  }

  private onSession(pool: H2SessionPool, err: MeshError | null, session: ClientHttp2Session | null): void {
    if (session !== null && this.finished) {
      pool.streamClosed(session);
      return;
    }
    if (this.completed) {
      if (session !== null) pool.streamClosed(session);
      return;
    }
    if (err !== null || session === null) {
      this.attemptFailed(err ?? new MeshError('MESH_ERR_UPSTREAM_RESET', `${pool.address}: no session`), true);
      return;
    }
    let up: ClientHttp2Stream;
    try {
      up = session.request(this.upHeaders!, { endStream: this.downEnded && this.replayBytes === 0 });
    } catch (e) {
      pool.streamClosed(session);
      this.attemptFailed(upstreamError(e, pool.address), true);
      return;
    }
    this.wire(up, () => pool.streamClosed(session));
  }

  /** Attaches an upstream stream for this attempt and starts the request body. */
  private wire(up: ClientHttp2Stream, closed: () => void): void {
    this.up = up;
    this.upEnded = false;
    this.upError = null;
    up.once('close', () => {
      closed();
      this.onUpClose(up);
    });
    up.on('error', (e: unknown) => {
      if (this.up === up) this.upError = e;
    });
    up.once('response', (h: IncomingHttpHeaders, flags: number) => this.onResponse(up, h, flags));
    up.on('trailers', (t: IncomingHttpHeaders) => {
      if (this.up === up && this.trailers === null) this.trailers = h2Trailers(t);
    });
    up.on('end', () => {
      // Node ends the readable side on every stream close; a reset or a dead session shows
      // as a non-zero code here and is handled on 'close' as the failure it is.
      if (this.up === up && (up.rstCode ?? 0) === 0) this.onUpEnd();
    });
    if (!this.downEnded || this.replayBytes > 0) {
      for (const b of this.replay ?? []) up.write(b);
      if (this.downEnded) up.end();
      this.readDownstream();
    }
  }

  /** Request body: downstream → upstream, with backpressure, keeping a copy for a replay. */
  private readDownstream(): void {
    if (this.reading) return;
    this.reading = true;
    const down = this.down;
    down.on('data', (c: Buffer) => {
      if (this.replay !== null) {
        this.replayBytes += c.length;
        if (this.replayBytes > MAX_REPLAY_BYTES) this.replay = null;
        else this.replay.push(c);
      }
      const up = this.up;
      if (up === null || up.destroyed) return;
      if (!up.write(c)) {
        down.pause();
        up.once('drain', () => down.resume());
      }
    });
    down.once('end', () => {
      this.downEnded = true;
      if (!this.grpc && this.target !== null) this.armTimer(this.target);
      const up = this.up;
      if (up !== null && !up.destroyed) up.end();
    });
  }

  private onResponse(up: ClientHttp2Stream, h: IncomingHttpHeaders, flags: number): void {
    if (this.up !== up || this.completed) return;
    this.clearTimerUnlessDeadline();
    // The upstream answered: the request reached an application, no retry from here on.
    this.replay = null;
    this.responded = true;
    const down = this.down;
    this.ctx.status = Number(h[':status']);
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (this.grpc && endStream) this.ctx.grpcStatus = grpcStatusNumber(h['grpc-status']);
    if (down.destroyed || down.closed) return;
    try {
      if (endStream) {
        down.respond(h2ResponseHeaders(h, this.engine.via), { endStream: true });
        this.completed = true;
        return;
      }
      down.respond(h2ResponseHeaders(h, this.engine.via), { waitForTrailers: true });
    } catch {
      up.close(NGHTTP2_CANCEL);
      return;
    }
    down.once('wantTrailers', () => this.sendTrailers());
    up.on('data', (c: Buffer) => {
      if (down.destroyed) return;
      if (!down.write(c)) up.pause();
    });
    down.on('drain', () => up.resume());
  }

  private onUpEnd(): void {
    this.upEnded = true;
    if (!this.responded || this.completed) return;
    this.down.end();
  }

  private sendTrailers(): void {
    const t = this.trailers ?? {};
    if (this.grpc && this.ctx.grpcStatus === undefined) this.ctx.grpcStatus = grpcStatusNumber(t['grpc-status']);
    this.completed = true;
    try {
      this.down.sendTrailers(t);
    } catch {
      this.down.close(NGHTTP2_INTERNAL_ERROR);
    }
  }

  private onUpClose(up: ClientHttp2Stream): void {
    if (this.up !== up) return;
    this.up = null;
    if (this.upEnded || this.completed || this.finished) return;
    const rst = up.rstCode ?? NGHTTP2_INTERNAL_ERROR;
    const where = this.ctx.endpoint ?? '?';
    if (!this.responded) {
      // The upstream refused the stream before processing it: safe to send elsewhere.
      const refused = rst === NGHTTP2_REFUSED_STREAM && this.replay !== null;
      const err =
        this.upError !== null && !(this.upError instanceof Error && (this.upError as { code?: string }).code === 'ERR_HTTP2_STREAM_ERROR')
          ? upstreamError(this.upError, where)
          : new MeshError('MESH_ERR_UPSTREAM_RESET', `${where}: the upstream reset the stream (HTTP/2 error ${rst})`);
      this.attemptFailed(err, refused);
      return;
    }
    this.fail(new MeshError('MESH_ERR_UPSTREAM_RESET', `${where}: the upstream reset the stream mid-response (HTTP/2 error ${rst})`));
  }

  /** One attempt failed; `safe` = the upstream certainly did not process the request. */
  private attemptFailed(failure: MeshError, safe: boolean): void {
    this.lease?.release(false);
    this.lease = null;
    const t = this.target!;
    // Inbound: a refused connect means "the local app is unavailable".
    const err = t.mapError?.(failure) ?? failure;
    this.lastError = err;
    if (safe && (err.retryable || err.code === 'MESH_ERR_UPSTREAM_RESET') && this.replay !== null && this.ctx.attempts <= t.policy.retryAttempts) {
      if (t.budget !== undefined && !t.budget.tryRetry()) {
        this.engine.metrics.retries.inc({ service: t.service, outcome: 'budget-exhausted' });
      } else {
        this.engine.metrics.retries.inc({ service: t.service, outcome: 'attempted' });
        // REFUSED_STREAM says "not now" (over the peer's stream limit, a restart): the same
        // endpoint may take the call on another session. A failed connect rules it out.
        if (err.code !== 'MESH_ERR_UPSTREAM_RESET') (this.tried ??= new Set()).add(this.ctx.endpoint ?? '');
        this.attempt();
        return;
      }
    }
    this.fail(err);
  }

  private clearTimerUnlessDeadline(): void {
    if (this.grpc || this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** The sidecar's own answer (or the end of a started response) for an error. */
  private fail(err: MeshError): void {
    if (this.completed || this.finished) return;
    this.ctx.error = err;
    if (this.up !== null && !this.up.destroyed) this.up.close(NGHTTP2_CANCEL);
    this.up = null;
    const down = this.down;
    this.completed = true;
    if (down.destroyed || down.closed) return;
    const status = grpcStatusOf(err.code);
    if (!down.headersSent) {
      if (this.grpc) {
        this.ctx.status = 200;
        this.ctx.grpcStatus = status;
        down.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': grpcMessage(err.message), [ERROR_HEADER]: err.code }, { endStream: true });
      } else {
        this.ctx.status = err.status;
        const body = errorBody(err);
        down.respond({ ':status': err.status, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), [ERROR_HEADER]: err.code });
        down.end(body);
      }
      return;
    }
    if (this.grpc) {
      // Headers went out: the status goes in the trailers (sent on wantTrailers).
      this.ctx.grpcStatus = status;
      this.trailers = { 'grpc-status': String(status), 'grpc-message': grpcMessage(err.message), [ERROR_HEADER]: err.code };
      down.end();
      return;
    }
    down.close(NGHTTP2_INTERNAL_ERROR);
  }

  private onDownClose(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (!this.completed) {
      // The client reset the stream or went away first.
      this.ctx.status = 499;
      this.ctx.error = new MeshError('MESH_ERR_DOWNSTREAM_ABORTED');
      if (this.grpc) this.ctx.grpcStatus = GrpcStatus.CANCELLED;
      if (this.up !== null && !this.up.destroyed) this.up.close(NGHTTP2_CANCEL);
    }
    this.lease?.release(this.ctx.error === undefined || this.ctx.error.origin !== 'upstream');
    this.lease = null;
    this.engine.inflight.count -= 1;
    finishRequest(this.engine, this.ctx);
  }
}

function grpcStatusNumber(v: unknown): number | undefined {
  if (typeof v !== 'string' || !/^\d{1,2}$/.test(v)) return undefined;
  return Number(v);
}
