// Egress policy for destinations outside the mesh. Placeholder until issue 3 lands:
// registry-only denies everything external, allow-any allows everything.
import type { MeshConfig } from '../config/schema.js';

export interface EgressDecision {
  readonly allowed: boolean;
  /** Which rule decided, for logs, errors and `dreammesh explain`. */
  readonly reason: string;
}

export function decideEgress(config: MeshConfig, host: string, port: number): EgressDecision {
  if (config.egress.policy === 'allow-any') return { allowed: true, reason: 'egress.policy is allow-any' };
  return { allowed: false, reason: `${host}:${port} is not a mesh service and egress.policy is registry-only` };
}
