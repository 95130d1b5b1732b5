// Inbound authorization: authz.allow rules of callers (verified mTLS identities), methods and
// path prefixes. No rules allows everything; with rules, a request matching none is refused.
// A path with dot segments or encoded slashes/dots never matches a path rule: the app might
// normalize it into a path the rule did not mean to allow.
import type { AuthzConfig } from '../config/schema.js';

type Rule = AuthzConfig['allow'][number];

const AMBIGUOUS = /(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\/i;

export function pathOf(target: string): string {
  const q = target.search(/[?#]/);
  return q === -1 ? target : target.slice(0, q);
}

function matches(rule: Rule, caller: string | undefined, method: string, path: string): boolean {
  if (rule.from !== undefined && (caller === undefined || !rule.from.includes(caller))) return false;
  if (rule.methods !== undefined && !rule.methods.includes(method)) return false;
  if (rule.paths !== undefined && (AMBIGUOUS.test(path) || !rule.paths.some((p) => path.startsWith(p)))) return false;
  return true;
}

/** HTTP requests: `target` is the request target as received. */
export function allowsRequest(allow: readonly Rule[], caller: string | undefined, method: string, target: string): boolean {
  if (allow.length === 0) return true;
  const path = pathOf(target);
  return allow.some((r) => matches(r, caller, method, path));
}

/** Opaque TCP tunnels carry no method or path: only rules that restrict neither can allow them. */
export function allowsTunnel(allow: readonly Rule[], caller: string | undefined): boolean {
  if (allow.length === 0) return true;
  return allow.some((r) => r.methods === undefined && r.paths === undefined && (r.from === undefined || (caller !== undefined && r.from.includes(caller))));
}
