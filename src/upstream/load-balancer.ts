// Load balancers over the candidate endpoints of one request (already filtered by route
// split and outlier state). Both honour weights; weight 0 means "never picked".
import type { EndpointState } from './endpoint-state.js';

export type LoadBalancer = (candidates: readonly EndpointState[]) => EndpointState | undefined;

/** Smooth weighted round-robin: even interleaving, exact shares over a cycle. */
export const roundRobin: LoadBalancer = (candidates) => {
  let total = 0;
  let best: EndpointState | undefined;
  for (const c of candidates) {
    if (c.weight <= 0) continue;
    c.current += c.weight;
    total += c.weight;
    if (best === undefined || c.current > best.current) best = c;
  }
  if (best) best.current -= total;
  return best;
};

/** Power of two choices: two distinct weighted random picks, keep the one with fewer active requests per weight. */
export const leastRequest: LoadBalancer = (candidates) => {
  const n = candidates.length;
  if (n <= 1) return candidates[0] !== undefined && candidates[0].weight > 0 ? candidates[0] : undefined;
  const a = weightedRandom(candidates, undefined);
  const b = weightedRandom(candidates, a);
  if (a === undefined || b === undefined) return a ?? b;
  return (a.active + 1) / a.weight <= (b.active + 1) / b.weight ? a : b;
};

function weightedRandom(candidates: readonly EndpointState[], skip: EndpointState | undefined): EndpointState | undefined {
  let total = 0;
  for (const c of candidates) if (c !== skip) total += Math.max(0, c.weight);
  if (total <= 0) return undefined;
  let x = Math.random() * total;
  let last: EndpointState | undefined;
  for (const c of candidates) {
    if (c === skip || c.weight <= 0) continue;
    last = c;
    x -= c.weight;
    if (x < 0) return c;
  }
  return last;
}

export function loadBalancerFor(name: 'round-robin' | 'least-request'): LoadBalancer {
  return name === 'round-robin' ? roundRobin : leastRequest;
}
