// The one place a finished request becomes metrics and an access-log line, for every entry.
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { RequestContext } from './request-context.js';

export interface Telemetry {
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
}

type CounterChild = ReturnType<Metrics['requests']['labels']>;
type HistogramChild = ReturnType<Metrics['requestDuration']['labels']>;

/**
 * Metric children by label values: prom-client hashes a label object on every call, which
 * showed in profiles; the label sets here are few (mode × service × status).
 */
const counters = new WeakMap<Metrics, Map<string, CounterChild>>();
const histograms = new WeakMap<Metrics, Map<string, HistogramChild>>();

function requestCounter(m: Metrics, mode: string, service: string, code: string): CounterChild {
  let byKey = counters.get(m);
  if (byKey === undefined) counters.set(m, (byKey = new Map<string, CounterChild>()));
  const key = `${mode}\0${service}\0${code}`;
  let c = byKey.get(key);
  if (c === undefined) byKey.set(key, (c = m.requests.labels({ mode, service, code })));
  return c;
}

function durationHistogram(m: Metrics, mode: string, service: string): HistogramChild {
  let byKey = histograms.get(m);
  if (byKey === undefined) histograms.set(m, (byKey = new Map<string, HistogramChild>()));
  const key = `${mode}\0${service}`;
  let h = byKey.get(key);
  if (h === undefined) byKey.set(key, (h = m.requestDuration.labels({ mode, service })));
  return h;
}

export function finishRequest(t: Telemetry, ctx: RequestContext): void {
  const durationMs = performance.now() - ctx.started;
  const code = String(ctx.status);
  requestCounter(t.metrics, ctx.mode, ctx.service, code).inc();
  durationHistogram(t.metrics, ctx.mode, ctx.service).observe(durationMs / 1000);
  if (ctx.entry === 'inbound') t.metrics.inboundRequests.inc({ caller: ctx.caller ?? 'unknown', code });
  if (ctx.grpcStatus !== undefined) t.metrics.grpcCalls.inc({ mode: ctx.mode, service: ctx.service, grpc_status: String(ctx.grpcStatus) });
  if (!t.accessLog.wants(ctx.status, ctx.error !== undefined)) return;
  t.accessLog.write({
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
    ...(ctx.grpcStatus !== undefined ? { grpcStatus: ctx.grpcStatus } : {}),
    ...(ctx.downstream !== undefined ? { downstream: ctx.downstream } : {}),
    ...(ctx.caller !== undefined ? { caller: ctx.caller } : {}),
  });
}
