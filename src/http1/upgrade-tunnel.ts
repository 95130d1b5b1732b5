// After 101 Switching Protocols (WebSocket and the like) the exchange becomes a byte tunnel
// between the two sockets, with half-close and backpressure as for CONNECT. Counted in
// dreammesh_upgrades_total{mode,service,outcome} when it ends. The request stays in flight
// until then (a drain waits for it) and is finished (metrics, access log) when it closes.
import type { Socket } from 'node:net';
import type { RequestContext } from '../pipeline/request-context.js';
import { pipeBoth } from '../upstream/tcp-relay.js';
import { finishRequest } from '../pipeline/finish.js';
import type { DownstreamConnection } from './downstream-connection.js';

export function startUpgradeTunnel(dc: DownstreamConnection, upstream: Socket, ctx: RequestContext): void {
  const { metrics } = dc.engine;
  const leftover = dc.detachForTunnel();
  const mode = { mode: ctx.mode };
  metrics.activeTunnels.inc(mode);
  const done = (): void => {
    metrics.activeTunnels.dec(mode);
    dc.engine.inflight.count -= 1;
    finishRequest(dc.engine, ctx);
  };
  pipeBoth(dc.socket, upstream, { ...(leftover !== null ? { head: leftover } : {}), idleMs: dc.engine.timeouts.idleMs }).then((r) => {
    done();
    const outcome = r.error === null || r.error.code === 'MESH_ERR_DOWNSTREAM_ABORTED' ? 'ok' : r.error.code === 'MESH_ERR_TUNNEL_IDLE' ? 'idle-timeout' : 'upstream-reset';
    metrics.upgrades.inc({ mode: ctx.mode, service: ctx.service, outcome });
    metrics.tunnelBytes.inc({ mode: ctx.mode, direction: 'up' }, r.bytesUp);
    metrics.tunnelBytes.inc({ mode: ctx.mode, direction: 'down' }, r.bytesDown);
  }, done);
}
