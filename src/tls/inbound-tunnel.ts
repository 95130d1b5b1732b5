// The receiving end of an mTLS-wrapped opaque tunnel (ALPN dreammesh-tcp): authorized by
// authz.allow like a request (only rules without methods and paths can allow bytes that have
// neither), then relayed to the app's port. Counted in dreammesh_tunnels_total{mode="inbound"}.
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { MeshConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import { parseListenAddress } from '../core/address.js';
import { relayTcp } from '../upstream/tcp-relay.js';
import { allowsTunnel } from './authz.js';

const MODE = { mode: 'inbound' } as const;

export async function relayToApp(deps: { config: MeshConfig; metrics: Metrics; log: Logger }, socket: TLSSocket, caller: string): Promise<void> {
  const { config, metrics, log } = deps;
  const app = config.app === undefined ? null : parseListenAddress(config.app);
  if (!allowsTunnel(config.authz.allow, caller)) {
    metrics.authzDenied.inc({ caller });
    metrics.tunnels.inc({ ...MODE, kind: 'service', outcome: 'denied' });
    log.info({ code: 'MESH_ERR_FORBIDDEN', caller }, 'inbound: opaque tunnel refused by authz.allow');
    socket.destroy();
    return;
  }
  if (app === null || app.kind !== 'tcp') {
    metrics.tunnels.inc({ ...MODE, kind: 'service', outcome: 'error' });
    log.info({ caller }, 'inbound: opaque tunnels need a TCP app address');
    socket.destroy();
    return;
  }
  metrics.activeTunnels.inc(MODE);
  const r = await relayTcp(socket, app.host, app.port, {
    connectTimeoutMs: config.timeouts.connectMs,
    idleMs: config.timeouts.idleMs,
    onConnected: () => socket.resume(),
  });
  metrics.activeTunnels.dec(MODE);
  if (r.connectFailed) socket.destroy();
  metrics.tunnelBytes.inc({ ...MODE, direction: 'up' }, r.bytesUp);
  metrics.tunnelBytes.inc({ ...MODE, direction: 'down' }, r.bytesDown);
  metrics.tunnels.inc({ ...MODE, kind: 'service', outcome: r.connectFailed ? 'connect_failed' : r.error === null ? 'ok' : 'error' });
}
