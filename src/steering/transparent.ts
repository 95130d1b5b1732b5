// Transparent mode: a redirected connection whose original destination differs from the
// listener's own address. Steering is decided here, once:
//   opaquePorts (databases, caches)    → opaque TCP, no detection
//   detect: HTTP/1                     → the shared HTTP server (routed by Host, else by the
//                                        original destination; see request-target.ts)
//   detect: HTTP/2 prior knowledge     → the HTTP/2 path (per-call routing, same fallback)
//   detect: TLS, other bytes, silence  → opaque TCP to the original destination
// Opaque TCP goes to the original destination itself: allowed when it is an endpoint of a mesh
// service, otherwise only if the egress policy allows it. A service's virtual IP (dns.enabled)
// names no host: the cluster's load balancer picks an endpoint, and the connection goes to that
// endpoint's registered host:port whatever port the client dialled on the virtual IP. Failures close the connection and
// are counted in dreammesh_tunnels_total{mode="transparent",outcome}.
import type { Socket } from 'node:net';
import type { EndpointLease, HostPort, SidecarContext } from '../core/sidecar-context.js';
import { MeshError, isMeshError } from '../core/errors.js';
import { canonicalHost } from '../core/canonical-address.js';
import { formatHostPort } from '../core/address.js';
import { detectProtocol, type Detection } from '../detect/protocol.js';
import { relayTcp } from '../upstream/tcp-relay.js';
import { connectMtlsTunnel } from '../tls/tunnel-dial.js';
import type { Endpoint } from '../registry/registry.js';

const MODE = 'transparent';

/**
 * Local addresses of this process's own opaque upstream connections. If one of them comes back
 * as a redirected downstream, the capture rules caught the sidecar itself (it does not run as
 * proxyUid/proxyGid): closing it stops an endless chain of connections to ourselves.
 */
const ownUpstreams = new Set<string>();
const key = (addr: string | undefined, port: number | undefined): string => `${(addr ?? '').replace(/^::ffff:(?=\d+\.)/, '')}|${port ?? 0}`;

export function handleTransparent(ctx: SidecarContext, socket: Socket, originalDst: HostPort): void {
  if (ctx.draining) {
    socket.destroy();
    return;
  }
  const t = ctx.config.transparent;
  if (t.opaquePorts.includes(originalDst.port)) {
    ctx.metrics.detected.inc({ protocol: 'opaque-port' });
    // After this turn's I/O callbacks, so a just-connected own upstream is known (loop check).
    setImmediate(() => void opaque(ctx, socket, originalDst, null));
    return;
  }
  detectProtocol(socket, t.detectTimeoutMs).then(
    (d) => {
      ctx.metrics.detected.inc({ protocol: d.protocol });
      if (d.protocol === 'closed' || socket.destroyed) {
        socket.destroy();
        return;
      }
      if (d.protocol === 'http2' && !d.ended) {
        // Balanced per call like explicit h2c: routed by :authority, else the original destination.
        ctx.adoptHttp2(socket, { mode: MODE, originalDst });
        return;
      }
      if (d.protocol === 'http1' && !d.ended) {
        ctx.adoptHttp(socket, { mode: MODE, originalDst });
        // The HTTP server reads the socket's handle directly; the unshifted bytes still sit in
        // the stream buffer and flow once the socket resumes.
        socket.resume();
        return;
      }
      void opaque(ctx, socket, originalDst, d);
    },
    () => socket.destroy(),
  );
}

async function opaque(ctx: SidecarContext, socket: Socket, dst: HostPort, d: Detection | null): Promise<void> {
  if (ownUpstreams.size > 0 && ownUpstreams.has(key(socket.remoteAddress, socket.remotePort))) {
    ctx.metrics.tunnels.inc({ mode: MODE, kind: 'egress', outcome: 'loop' });
    ctx.log.error({ originalDst: formatHostPort(dst.host, dst.port) }, "the sidecar's own upstream connection was captured: run it as transparent.redirect.proxyUid/proxyGid, or set transparent.redirect.proxyMark");
    socket.destroy();
    return;
  }
  let kind: 'service' | 'egress' = 'egress';
  let service = '-';
  let to: HostPort = dst;
  let lease: EndpointLease | undefined;
  let mtls = false;
  try {
    // A captured connection to one of our own listeners (the admin port, say) goes nowhere.
    if (ctx.isOwnAddress(canonicalHost(dst.host.toLowerCase()) ?? dst.host, dst.port)) throw new MeshError('MESH_ERR_LOOP', 'the original destination is this sidecar');
    const dest = ctx.resolve(dst.host, dst.port);
    if (dest.kind === 'service') {
      kind = 'service';
      service = dest.service;
      if (dest.virtual === true) {
        lease = ctx.pickEndpoint(service);
        to = { host: lease.endpoint.host, port: lease.endpoint.port };
        if (ctx.isOwnAddress(canonicalHost(to.host.toLowerCase()) ?? to.host, to.port)) {
          lease.release(true);
          lease = undefined;
          throw new MeshError('MESH_ERR_LOOP', `service "${service}" has an endpoint at ${formatHostPort(to.host, to.port)}, this sidecar's own listener`);
        }
      }
      mtls = (lease !== undefined ? lease.endpoint : endpointAt(ctx, service, dst))?.mtls === true;
    } else {
      ctx.checkEgress(dst.host, dst.port);
    }
  } catch (e) {
    const code = isMeshError(e) ? e.code : 'MESH_ERR_INTERNAL';
    ctx.metrics.tunnels.inc({ mode: MODE, kind, outcome: code === 'MESH_ERR_EGRESS_DENIED' ? 'denied' : code === 'MESH_ERR_LOOP' ? 'loop' : 'error' });
    ctx.log.info({ originalDst: formatHostPort(dst.host, dst.port), error: code }, 'transparent connection refused');
    socket.destroy();
    return;
  }
  const ended = d?.ended === true;
  ctx.metrics.activeTunnels.inc({ mode: MODE });
  let own: string | undefined;
  const r = await relayTcp(socket, to.host, to.port, {
    connectTimeoutMs: ctx.config.timeouts.connectMs,
    idleMs: ctx.config.timeouts.idleMs,
    mark: ctx.config.transparent.redirect.proxyMark,
    ...(mtls ? { connect: () => connectMtlsTunnel(ctx.identity, to.host, to.port, service, ctx.config.timeouts.connectMs, ctx.config.transparent.redirect.proxyMark) } : {}),
    onConnected: (up) => {
      own = key(up.localAddress, up.localPort);
      ownUpstreams.add(own);
      socket.resume();
      // The client already half-closed while we were detecting: its bytes and its FIN go on.
      if (ended) {
        if (d.head.length > 0) up.write(d.head);
        up.end();
      }
    },
  });
  if (own !== undefined) ownUpstreams.delete(own);
  lease?.release(!r.connectFailed);
  ctx.metrics.activeTunnels.dec({ mode: MODE });
  const outcome = ctx.drainCut ? 'drain-timeout' : r.connectFailed ? 'connect_failed' : r.error === null || r.error.code === 'MESH_ERR_DOWNSTREAM_ABORTED' ? 'ok' : 'error';
  ctx.metrics.tunnels.inc({ mode: MODE, kind, outcome });
  ctx.metrics.tunnelBytes.inc({ mode: MODE, direction: 'upstream' }, r.bytesUp);
  ctx.metrics.tunnelBytes.inc({ mode: MODE, direction: 'downstream' }, r.bytesDown);
  if (r.error !== null && outcome !== 'ok') {
    ctx.log.debug({ originalDst: formatHostPort(dst.host, dst.port), upstream: formatHostPort(to.host, to.port), service, error: r.error.code }, 'transparent tunnel ended with an error');
  }
  if (r.connectFailed) socket.destroy();
}

/** The registry endpoint at the original destination (whether it speaks mTLS). */
function endpointAt(ctx: SidecarContext, service: string, dst: HostPort): Endpoint | undefined {
  const host = canonicalHost(dst.host.toLowerCase()) ?? dst.host;
  return ctx.registry
    .snapshot()
    .services.get(service)
    ?.endpoints.find((e) => e.port === dst.port && (canonicalHost(e.host.toLowerCase()) ?? e.host) === host);
}
