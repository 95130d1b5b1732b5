// The inbound listener: requests from other sidecars (or captured inbound traffic) go to the
// local app through the HTTP/1 engine, with the inbound router as the only cluster.
import { createServer as createNetServer, type Server } from 'node:net';
import type { Logger } from 'pino';
import type { MeshConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { HttpEngine } from '../http1/engine.js';
import { DownstreamConnection } from '../http1/downstream-connection.js';
import { capConnections } from './connection-cap.js';

export function createInboundListener(config: MeshConfig, engine: HttpEngine, metrics: Metrics, log: Logger): Server {
  const server = createNetServer({ noDelay: true, keepAlive: true, allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    new DownstreamConnection(socket, { mode: 'explicit' }, engine);
  });
  server.on('error', (e) => {
    if (server.listening) log.error({ err: e }, 'inbound listener error');
  });
  capConnections(server, config.limits.maxDownstreamConnections, 'inbound', metrics, log);
  return server;
}
