// Weighted splits of a route across label subsets. Within one split every endpoint belongs to
// at most one entry, so an entry's weight is exactly its share of traffic: an entry with empty
// `labels` selects the endpoints that no other entry of the split selects (the "rest"), and
// entries whose selectors could both match one endpoint are refused when the config loads.
import type { RouteConfig } from '../config/schema.js';
import type { Endpoint } from '../registry/registry.js';

type Labels = Readonly<Record<string, string>>;
type SplitEntry = NonNullable<RouteConfig['split']>[number];

/** Which endpoints one pick may use; null = every endpoint of the service. */
export type EndpointFilter = ((e: Endpoint) => boolean) | null;

export interface CompiledSplit {
  readonly total: number;
  readonly entries: readonly { readonly weight: number; readonly filter: EndpointFilter }[];
}

function selects(selector: Labels, labels: Labels): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** One endpoint could carry both selectors unless they give some key different values. */
function overlaps(a: Labels, b: Labels): boolean {
  for (const k in a) if (k in b && a[k] !== b[k]) return false;
  return true;
}

const show = (l: Labels): string =>
  `{${Object.entries(l)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')}}`;

/**
 * Problems with one split, each naming its field (`field` is e.g. "services.users.routes.0.split").
 * Overlap is judged on the selectors, not on today's endpoints: the registry changes while the
 * config stays, and a split must mean the same thing tomorrow.
 */
export function splitErrors(split: readonly SplitEntry[], field: string): string[] {
  const errs: string[] = [];
  const rest = split.flatMap((s, i) => (Object.keys(s.labels).length === 0 ? [i] : []));
  if (rest.length > 1) {
    errs.push(`${field}.${rest[1]}.labels: {} already appears at ${field}.${rest[0]}.labels; an empty selector means "the endpoints no other entry selects" and may appear once per split`);
  }
  for (let j = 0; j < split.length; j++) {
    const b = split[j]!.labels;
    if (Object.keys(b).length === 0) continue;
    for (let i = 0; i < j; i++) {
      const a = split[i]!.labels;
      if (Object.keys(a).length === 0 || !overlaps(a, b)) continue;
      errs.push(
        `${field}.${j}.labels: ${show(b)} overlaps ${field}.${i}.labels ${show(a)}: an endpoint labelled ${show({ ...a, ...b })} would be in both; ` +
          'give the two entries different values of one label (e.g. version: v1 and version: v2)',
      );
    }
  }
  if (split.length > 0 && split.every((s) => s.weight === 0)) errs.push(`${field}: every weight is 0; at least one entry needs a positive weight`);
  return errs;
}

export function compileSplit(split: readonly SplitEntry[]): CompiledSplit {
  const selectors = split.map((s) => s.labels).filter((l) => Object.keys(l).length > 0);
  const entries = split.map((s) => {
    const sel = s.labels;
    let filter: EndpointFilter;
    if (Object.keys(sel).length > 0) filter = (e) => selects(sel, e.labels);
    else if (selectors.length === 0) filter = null;
    else filter = (e) => !selectors.some((x) => selects(x, e.labels));
    return { weight: s.weight, filter };
  });
  return { total: split.reduce((t, s) => t + s.weight, 0), entries };
}

/** Weighted random choice of one entry's filter (a 1-in-100 entry gets 1% of requests). */
export function pickFilter(c: CompiledSplit): EndpointFilter {
  if (c.total <= 0) return null;
  let x = Math.random() * c.total;
  for (const e of c.entries) {
    x -= e.weight;
    if (x < 0) return e.filter;
  }
  return c.entries[c.entries.length - 1]!.filter;
}
