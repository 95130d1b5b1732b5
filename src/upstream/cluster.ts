// A cluster: one service's endpoints with their load balancer, outlier ejection, retry
// budget and effective timeouts. Endpoint state survives registry updates (same address,
// same state), so a snapshot change never resets ejections or in-flight counts.
import type { MeshConfig } from '../config/schema.js';
import type { Endpoint } from '../registry/registry.js';
import type { EndpointLease } from '../core/sidecar-context.js';
import type { EndpointFilter } from '../routing/route-table.js';
import { MeshError } from '../core/errors.js';
import { EndpointState } from './endpoint-state.js';
import { loadBalancerFor, type LoadBalancer } from './load-balancer.js';
import { RetryBudget } from './retry-budget.js';
import type { PendingLimit } from './endpoint-pool.js';

export interface ClusterPolicy {
  readonly connectMs: number;
  readonly requestMs: number;
  readonly idleMs: number;
  readonly retryAttempts: number;
}

export class Cluster {
  private states = new Map<string, EndpointState>();
  private lb: LoadBalancer;
  readonly budget: RetryBudget;
  /** Requests of this cluster waiting for a pooled connection (limits.maxPendingRequests). */
  readonly pending: PendingLimit;
  policy: ClusterPolicy;
  /** Called when an endpoint gets ejected (metrics, logs). */
  onEject: (e: Endpoint, ms: number) => void = () => {};

  constructor(
    readonly name: string,
    private config: MeshConfig,
    endpoints: readonly Endpoint[],
  ) {
    const svc = config.services[name];
    this.lb = loadBalancerFor(svc?.lb ?? config.lb);
    const r = { ...config.retries, ...(svc?.retries ?? {}) };
    this.budget = new RetryBudget(r.budgetPercent, r.minPerSecond);
    this.policy = policyFor(config, name);
    this.pending = { count: 0, max: config.limits.maxPendingRequests };
    this.update(endpoints);
  }

  update(endpoints: readonly Endpoint[]): void {
    const next = new Map<string, EndpointState>();
    for (const e of endpoints) {
      const prev = this.states.get(e.address);
      if (prev) {
        prev.endpoint = e;
        next.set(e.address, prev);
      } else next.set(e.address, new EndpointState(e));
    }
    this.states = next;
  }

  endpointStates(): readonly EndpointState[] {
    return [...this.states.values()];
  }

  /** Picks an endpoint for one attempt; `exclude` holds addresses already tried. */
  pick(filter: EndpointFilter, exclude?: ReadonlySet<string>): EndpointLease {
    const now = Date.now();
    const candidates: EndpointState[] = [];
    let total = 0;
    for (const s of this.states.values()) {
      if (filter !== null && !filter(s.endpoint)) continue;
      total += 1;
      if (s.isEjected(now) || (exclude !== undefined && exclude.has(s.endpoint.address))) continue;
      candidates.push(s);
    }
    const chosen = this.lb(candidates);
    if (chosen === undefined) {
      throw new MeshError(
        'MESH_ERR_NO_HEALTHY_ENDPOINT',
        total === 0 ? `service "${this.name}" has no endpoints${filter ? ' matching the route' : ''}` : `all ${total} endpoints of "${this.name}" are ejected or already tried`,
        { details: { service: this.name, endpoints: total } },
      );
    }
    chosen.active += 1;
    let released = false;
    return {
      endpoint: chosen.endpoint,
      release: (ok: boolean) => {
        if (released) return;
        released = true;
        chosen.active -= 1;
        this.outcome(chosen, ok);
      },
    };
  }

  private outcome(s: EndpointState, ok: boolean): void {
    if (ok) {
      s.consecutiveFailures = 0;
      return;
    }
    s.consecutiveFailures += 1;
    const o = this.config.outlier;
    if (s.consecutiveFailures < o.consecutiveFailures) return;
    const now = Date.now();
    let ejected = 0;
    for (const x of this.states.values()) if (x.isEjected(now)) ejected += 1;
    if (((ejected + 1) * 100) / this.states.size > o.maxEjectionPercent) return;
    s.ejections += 1;
    const ms = o.baseEjectionMs * Math.min(s.ejections, 10);
    s.ejectedUntil = now + ms;
    s.consecutiveFailures = 0;
    this.onEject(s.endpoint, ms);
  }
}

export function policyFor(config: MeshConfig, service: string | undefined): ClusterPolicy {
  const svc = service === undefined ? undefined : config.services[service];
  const t = { ...config.timeouts, ...(svc?.timeouts ?? {}) };
  const r = { ...config.retries, ...(svc?.retries ?? {}) };
  return { connectMs: t.connectMs, requestMs: t.requestMs, idleMs: t.idleMs, retryAttempts: r.attempts };
}
