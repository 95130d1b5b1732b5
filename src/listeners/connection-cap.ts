// limits.maxDownstreamConnections: beyond it, a listener closes new connections at accept
// (node:net's maxConnections) so that file descriptors stay for the connections it serves,
// for upstreams and for the admin listener. Every refusal is counted; the first of a burst
// is logged.
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.js';

const LOG_EVERY_MS = 10_000;

export function capConnections(server: Server, max: number, listener: string, metrics: Metrics, log: Logger): void {
  server.maxConnections = max;
  const counter = metrics.downstreamRejected.labels({ listener });
  let lastLog = 0;
  server.on('drop', () => {
    counter.inc();
    const now = Date.now();
    if (now - lastLog < LOG_EVERY_MS) return;
    lastLog = now;
    log.warn({ listener, maxDownstreamConnections: server.maxConnections }, 'connection refused: the listener is at limits.maxDownstreamConnections');
  });
}
