// Per-endpoint state that outlives registry snapshots: active requests (least-request),
// smooth weighted round-robin position, and outlier ejection.
import type { Endpoint } from '../registry/registry.js';

export class EndpointState {
  active = 0;
  /** Smooth weighted round-robin accumulator. */
  current = 0;
  consecutiveFailures = 0;
  ejectedUntil = 0;
  ejections = 0;

  constructor(public endpoint: Endpoint) {}

  get weight(): number {
    return this.endpoint.weight;
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }
}
