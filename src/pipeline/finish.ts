// The one place a finished request becomes metrics and an access-log line, for every entry.
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { RequestContext } from './request-context.js';

export interface Telemetry {
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
}

export function finishRequest(t: Telemetry, ctx: RequestContext): void {
  const durationMs = performance.now() - ctx.started;
  const code = String(ctx.status);
  t.metrics.requests.inc({ mode: ctx.mode, service: ctx.service, code });
  t.metrics.requestDuration.observe({ mode: ctx.mode, service: ctx.service }, durationMs / 1000);
  if (ctx.entry === 'inbound') t.metrics.inboundRequests.inc({ caller: ctx.caller ?? 'unknown', code });
  t.accessLog.record({
    mode: ctx.mode,
    method: ctx.method,
    path: ctx.path.length > 256 ? ctx.path.slice(0, 256) : ctx.path,
    authority: ctx.authority.length > 256 ? ctx.authority.slice(0, 256) : ctx.authority,
    service: ctx.service,
    ...(ctx.route !== undefined ? { route: ctx.route } : {}),
    ...(ctx.endpoint !== undefined ? { endpoint: ctx.endpoint } : {}),
    status: ctx.status,
    durationMs: Math.round(durationMs * 1000) / 1000,
    ...(ctx.error !== undefined ? { error: ctx.error.code } : {}),
    ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
    ...(ctx.attempts > 1 ? { attempts: ctx.attempts } : {}),
    ...(ctx.downstream !== undefined ? { downstream: ctx.downstream } : {}),
  });
}
