// Forward-proxy CONNECT tunnels: `CONNECT host:port` opens a TCP tunnel. When the authority
// names a mesh service (by name, with or without port and domain suffix, or by an endpoint
// address) the tunnel goes to one of its endpoints, load-balanced, trying another endpoint
// when one refuses; otherwise to the external host if the egress policy allows it. The
// sidecar never terminates TLS: after "200 Connection Established" it only relays bytes.
//
// Every way a CONNECT ends is counted once in dreammesh_tunnels_total{mode,kind,outcome}.
// Errors before the 200 become HTTP answers on the raw socket (writeRawError); after it,
// the connection is closed.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EndpointLease, SidecarContext } from '../core/sidecar-context.js';
import { MeshError, toMeshError, type ErrorCode } from '../core/errors.js';
import { writeRawError } from '../core/error-response.js';
import { parseAuthority, type Authority } from '../routing/authority.js';
import { formatHostPort } from '../core/address.js';
import { connectUpstream, pipeBoth } from '../upstream/tcp-relay.js';
import { viaShowsLoop } from '../telemetry/request-headers.js';
import { canonicalHost } from '../core/canonical-address.js';
import { connectMtlsTunnel } from '../tls/tunnel-dial.js';
import { detectProtocol, type Detection } from '../detect/protocol.js';

const EMPTY = Buffer.alloc(0);

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');
const MODE = { mode: 'proxy' } as const;
/** The `service` label and access-log service of tunnels to destinations outside the mesh. */
const EGRESS = 'egress';
/** How long a refused CONNECT's client gets to read the answer and close. */
const LINGER_MS = 5000;

/** Short, bounded outcome labels for dreammesh_tunnels_total. */
const OUTCOME: Partial<Record<ErrorCode, string>> = {
  MESH_ERR_BAD_HOST: 'bad-request',
  MESH_ERR_BAD_REQUEST: 'bad-request',
  MESH_ERR_URI_TOO_LONG: 'bad-request',
  MESH_ERR_EGRESS_DENIED: 'denied',
  MESH_ERR_LOOP: 'loop',
  MESH_ERR_DRAINING: 'draining',
  MESH_ERR_NO_HEALTHY_ENDPOINT: 'no-endpoint',
  MESH_ERR_NO_ROUTE: 'no-endpoint',
  MESH_ERR_UPSTREAM_REFUSED: 'connect-refused',
  MESH_ERR_UPSTREAM_CONNECT_TIMEOUT: 'connect-timeout',
  MESH_ERR_UPSTREAM_UNRESOLVED: 'unresolved',
  MESH_ERR_UPSTREAM_RESET: 'upstream-reset',
  MESH_ERR_DOWNSTREAM_ABORTED: 'downstream-aborted',
  MESH_ERR_TUNNEL_IDLE: 'idle-timeout',
  MESH_ERR_DRAIN_TIMEOUT: 'drain-timeout',
};

function outcomeOf(e: MeshError | null): string {
  return e === null ? 'ok' : (OUTCOME[e.code] ?? 'error');
}

/** The CONNECT request target must be authority-form with a port (RFC 9110 §9.3.6). */
export function connectAuthority(url: string, maxUriBytes: number): Authority & { port: number } {
  if (url.length > maxUriBytes) throw new MeshError('MESH_ERR_URI_TOO_LONG', `the CONNECT target is ${url.length} bytes; the limit is ${maxUriBytes}`);
  if (url.length === 0 || url.startsWith('/') || url.includes('/') || url.includes('@')) {
    throw new MeshError('MESH_ERR_BAD_HOST', `CONNECT needs host:port, got "${url.slice(0, 100)}"`);
  }
  const a = parseAuthority(url);
  if (a.port === undefined) throw new MeshError('MESH_ERR_BAD_HOST', `CONNECT needs host:port, got "${url.slice(0, 100)}" (no port)`);
  return { host: a.host, port: a.port };
}

/** What a tunnel needs of the CONNECT request: its target and the Via it carried. */
export interface ConnectRequest {
  readonly url: string;
  readonly via: string | undefined;
}

export function handleConnect(ctx: SidecarContext, req: ConnectRequest, socket: Duplex, head: Buffer): void {
  tunnel(ctx, req, socket as Socket, head).catch((e: unknown) => {
    ctx.log.error({ err: e }, 'CONNECT tunnel failed unexpectedly');
    socket.destroy();
  });
}

async function tunnel(ctx: SidecarContext, req: ConnectRequest, socket: Socket, head: Buffer): Promise<void> {
  const { metrics } = ctx;
  const started = performance.now();
  // Bytes the client sends before the 200 (a TLS ClientHello, a payload and its FIN) stay in
  // the socket until the relay starts: node:http left it flowing with no 'data' listener.
  socket.pause();
  let kind = 'none';
  let service = '-';
  let upstream: Socket | undefined;
  let lease: EndpointLease | undefined;
  // The client may go away while we connect; remember it instead of crashing on a late error.
  let downstreamGone = false;
  const onGone = (): void => {
    downstreamGone = true;
  };
  socket.on('error', onGone);
  socket.once('close', onGone);
  const log = (status: number, err: MeshError | null): void => {
    ctx.accessLog.record({
      mode: 'proxy',
      method: 'CONNECT',
      path: '',
      authority: req.url.slice(0, 256),
      service,
      ...(upstream?.remoteAddress !== undefined ? { endpoint: formatHostPort(upstream.remoteAddress, upstream.remotePort ?? 0) } : {}),
      status,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      ...(err !== null ? { error: err.code } : {}),
      ...(socket.remoteAddress !== undefined ? { downstream: socket.remoteAddress } : {}),
    });
  };
  try {
    if (ctx.draining) throw new MeshError('MESH_ERR_DRAINING', 'the sidecar is shutting down');
    const { host, port } = connectAuthority(req.url ?? '', ctx.config.limits.maxUriBytes);
    if (viaShowsLoop(req.via, ctx.via)) throw new MeshError('MESH_ERR_LOOP', 'this CONNECT already passed through this sidecar (Via)');
    if (ctx.isOwnAddress(host, port)) throw new MeshError('MESH_ERR_LOOP', `CONNECT ${host}:${port} targets this sidecar's own listener`);
    const dest = ctx.resolve(host, port);
    const connectMs = ctx.config.timeouts.connectMs;
    if (dest.kind === 'service') {
      kind = 'service';
      service = dest.service;
      const r = await connectService(ctx, dest.service, connectMs, () => downstreamGone);
      upstream = r.socket;
      lease = r.lease;
    } else {
      kind = 'egress';
      service = EGRESS;
      ctx.checkEgress(dest.host, dest.port);
      upstream = await connectUpstream(dest.host, dest.port, connectMs, ctx.config.transparent.redirect.proxyMark);
    }
    // A name that resolved to one of our own listeners (an alias of localhost, say).
    const peer = upstream.remoteAddress === undefined ? undefined : (canonicalHost(upstream.remoteAddress.toLowerCase()) ?? upstream.remoteAddress);
    if (peer !== undefined && upstream.remotePort !== undefined && ctx.isOwnAddress(peer, upstream.remotePort)) {
      throw new MeshError('MESH_ERR_LOOP', `CONNECT ${host}:${port} leads back to this sidecar (${upstream.remoteAddress}:${upstream.remotePort})`);
    }
    if (downstreamGone || socket.destroyed) throw new MeshError('MESH_ERR_DOWNSTREAM_ABORTED');
  } catch (e) {
    upstream?.destroy();
    const err = toMeshError(e);
    lease?.release(err.origin !== 'upstream');
    socket.off('error', onGone);
    socket.off('close', onGone);
    if (err.code === 'MESH_ERR_DOWNSTREAM_ABORTED') socket.destroy();
    else answerAndClose(socket, err);
    metrics.tunnels.inc({ ...MODE, kind, outcome: outcomeOf(err) });
    log(err.code === 'MESH_ERR_DOWNSTREAM_ABORTED' ? 499 : err.status, err);
    return;
  }
  socket.off('error', onGone);
  socket.off('close', onGone);
  socket.write(ESTABLISHED);
  let first = head;
  if (kind === 'service') {
    // gRPC and other HTTP/2 clients behind http_proxy/grpc_proxy tunnel h2c to a service: that
    // is terminated here and balanced per call instead of pinned to the endpoint dialled above.
    const h2 = await peekHttp2(ctx, socket, head);
    if (h2.ended || h2.protocol === 'http2') {
      first = h2.head;
      if (h2.protocol === 'http2' && !h2.ended) {
        upstream.destroy();
        lease?.release(true);
        metrics.tunnels.inc({ ...MODE, kind, outcome: 'http2' });
        log(200, null);
        ctx.adoptHttp2(socket, { mode: 'proxy' }, connectAuthority(req.url, ctx.config.limits.maxUriBytes));
        return;
      }
      // The client half-closed while we looked: its bytes and its FIN go on.
      if (first.length > 0) upstream.write(first);
      upstream.end();
      first = EMPTY;
    } else first = EMPTY; // unshifted back into the socket
  }
  metrics.activeTunnels.inc(MODE);
  // A draining sidecar lets the tunnel run until the drain deadline (sidecar.ts cuts it then).
  const relayed = await pipeBoth(socket, upstream, { head: first, idleMs: ctx.config.timeouts.idleMs });
  const result = ctx.drainCut ? { ...relayed, error: new MeshError('MESH_ERR_DRAIN_TIMEOUT', 'cut at the drain deadline') } : relayed;
  metrics.activeTunnels.dec(MODE);
  lease?.release(result.error === null || result.error.origin !== 'upstream');
  metrics.tunnelBytes.inc({ ...MODE, direction: 'up' }, result.bytesUp);
  metrics.tunnelBytes.inc({ ...MODE, direction: 'down' }, result.bytesDown);
  metrics.tunnels.inc({ ...MODE, kind, outcome: outcomeOf(result.error) });
  log(200, result.error);
}

/** The client's first tunnelled bytes (those read with the CONNECT head first), put back. */
function peekHttp2(ctx: SidecarContext, socket: Socket, head: Buffer): Promise<Detection> {
  if (head.length > 0) socket.unshift(head);
  const d = detectProtocol(socket, ctx.config.transparent.detectTimeoutMs);
  // The socket was paused at the CONNECT: a new 'data' listener alone does not resume it.
  socket.resume();
  return d;
}

/**
 * Writes the error answer and closes our side. The client's remaining bytes are read and
 * dropped so that its FIN closes the socket; one that never closes is cut after a while.
 */
function answerAndClose(socket: Socket, err: MeshError): void {
  socket.on('error', () => socket.destroy());
  socket.resume();
  writeRawError(socket, err);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Connects to an endpoint of the service; a refused or timed-out connect tries another one. */
async function connectService(ctx: SidecarContext, service: string, connectMs: number, gone: () => boolean): Promise<{ socket: Socket; lease: EndpointLease }> {
  const tried = new Set<string>();
  const attempts = 1 + ctx.config.retries.attempts;
  let last: MeshError | undefined;
  for (let i = 0; i < attempts && !gone(); i++) {
    let lease: EndpointLease;
    try {
      lease = ctx.pickEndpoint(service, tried);
    } catch (e) {
      if (last !== undefined) throw last; // nowhere else to go: report the real failure
      throw e;
    }
    const ep = lease.endpoint;
    tried.add(ep.address);
    try {
      // An endpoint with mTLS on gets the tunnel's bytes wrapped in mTLS (its sidecar unwraps them).
      const mark = ctx.config.transparent.redirect.proxyMark;
      const socket = ep.mtls === true ? await connectMtlsTunnel(ctx.identity, ep.host, ep.port, service, connectMs, mark) : await connectUpstream(ep.host, ep.port, connectMs, mark);
      return { socket, lease };
    } catch (e) {
      last = toMeshError(e);
      lease.release(false);
      if (!last.retryable) throw last;
    }
  }
  throw last ?? new MeshError('MESH_ERR_DOWNSTREAM_ABORTED');
}
