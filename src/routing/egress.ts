// Egress policy for destinations outside the mesh, the same for every mode (explicit Host,
// absolute-form URI, CONNECT authority, transparent original destination).
//
// egress.policy: allow-any lets everything through; registry-only lets through only what an
// egress.allow entry matches. An entry is a host part with an optional port part:
//   host part: "api.example.com" (exact) | "*.example.com" (any subdomain, not the apex)
//              | "*" (any host) | "10.1.2.3" | "10.0.0.0/8" | "2001:db8::1" | "2001:db8::/32"
//   port part: ":443" | ":8000-8999"; IPv6 with a port is bracketed: "[2001:db8::/32]:443"
// Name entries match names, address entries match address literals: no DNS lookup is made
// (a name that resolves into an allowed CIDR is not allowed by the CIDR).
// Entries are checked when the config loads (egressEntryError), compiled once per config.
import { BlockList, isIP } from 'node:net';
import type { MeshConfig } from '../config/schema.js';

export interface EgressDecision {
  readonly allowed: boolean;
  /** Which rule decided, for logs, errors and `dreammesh explain`. */
  readonly reason: string;
  /** The egress.allow entry that allowed it, when one did. */
  readonly rule?: string;
}

type HostMatch = { readonly kind: 'any' } | { readonly kind: 'exact'; readonly host: string } | { readonly kind: 'suffix'; readonly suffix: string } | { readonly kind: 'ip'; readonly list: BlockList };

interface AllowRule {
  readonly index: number;
  readonly text: string;
  readonly host: HostMatch;
  readonly portMin: number;
  readonly portMax: number;
}

const HOST_LABELS = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** Parses one egress.allow entry; a string is the error (without the field name). */
export function parseAllowEntry(raw: string, index = 0): AllowRule | string {
  const text = raw.trim();
  if (text.length === 0) return 'empty entry';
  let hostPart: string;
  let portPart: string | undefined;
  if (text.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
    if (m === null) return `"${raw}": unbalanced [ ]; write IPv6 with a port as [2001:db8::/32]:443`;
    hostPart = m[1]!;
    portPart = m[2];
  } else if ((text.match(/:/g) ?? []).length > 1) {
    hostPart = text; // bare IPv6 (or IPv6 CIDR) without a port
  } else {
    const i = text.indexOf(':');
    hostPart = i === -1 ? text : text.slice(0, i);
    portPart = i === -1 ? undefined : text.slice(i + 1);
  }
  let portMin = 1;
  let portMax = 65535;
  if (portPart !== undefined) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(portPart);
    if (m === null) return `"${raw}": the port must be N or N-M (got "${portPart}")`;
    portMin = Number(m[1]);
    portMax = m[2] === undefined ? portMin : Number(m[2]);
    if (portMin < 1 || portMax > 65535 || portMin > portMax) return `"${raw}": port range ${portPart} is not within 1-65535 (low-high)`;
  }
  const lower = hostPart.toLowerCase();
  const host = lower.endsWith('.') && !lower.endsWith('*.') ? lower.slice(0, -1) : lower;
  const matcher = parseHostMatch(host);
  if (typeof matcher === 'string') return `"${raw}": ${matcher}`;
  return { index, text, host: matcher, portMin, portMax };
}

function parseHostMatch(host: string): HostMatch | string {
  if (host === '*') return { kind: 'any' };
  const slash = host.indexOf('/');
  if (slash !== -1) {
    const addr = host.slice(0, slash);
    const bitsText = host.slice(slash + 1);
    const family = isIP(addr);
    if (family === 0) return `"${addr}" before the / is not an IP address`;
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) return `prefix length /${bitsText} is not 0-${max}`;
    const list = new BlockList();
    list.addSubnet(addr, Number(bitsText), family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'ip', list };
  }
  const family = isIP(host);
  if (family !== 0) {
    const list = new BlockList();
    list.addAddress(host, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'ip', list };
  }
  if (host.startsWith('*.')) {
    const rest = host.slice(2);
    if (!HOST_LABELS.test(rest)) return `"${host}" is not a valid wildcard domain (*.example.com)`;
    return { kind: 'suffix', suffix: '.' + rest };
  }
  if (host.includes('*')) return `"${host}": a wildcard is only allowed as a whole first label (*.example.com) or alone (*)`;
  if (/^\d+(\.\d+)*$/.test(host)) return `"${host}" is not a valid IPv4 address`;
  if (!HOST_LABELS.test(host)) return `"${host}" is not a valid host name, *.domain, IP address or CIDR`;
  return { kind: 'exact', host };
}

/** The config-load check: an error message naming the field, or null. */
export function egressEntryError(entry: string, field: string): string | null {
  const r = parseAllowEntry(entry);
  return typeof r === 'string' ? `${field}: ${r}` : null;
}

/**
 * Checks a NO_PROXY-style bypass entry: host, .domain, *.domain, IP, CIDR, optional :port,
 * or "*". Returns an error message naming the field, or null.
 */
export function bypassEntryError(entry: string, field: string): string | null {
  const e = entry.trim();
  if (e === '*') return null;
  if (/[\s,]/.test(e)) return `${field}: "${entry}" must be one entry (no spaces or commas)`;
  const asAllow = e.startsWith('.') ? '*' + e : e;
  const r = parseAllowEntry(asAllow);
  if (typeof r === 'string') return `${field}: ${r.replace(asAllow, entry)}`;
  if (r.portMin !== r.portMax && !(r.portMin === 1 && r.portMax === 65535)) return `${field}: "${entry}": NO_PROXY takes one port, not a range`;
  return null;
}

function hostMatches(m: HostMatch, host: string, family: number): boolean {
  switch (m.kind) {
    case 'any':
      return true;
    case 'exact':
      return family === 0 && host === m.host;
    case 'suffix':
      return family === 0 && host.length > m.suffix.length && host.endsWith(m.suffix);
    case 'ip':
      return family !== 0 && m.list.check(host, family === 4 ? 'ipv4' : 'ipv6');
  }
}

const compiled = new WeakMap<object, readonly AllowRule[]>();

function rulesFor(config: MeshConfig): readonly AllowRule[] {
  let rules = compiled.get(config.egress);
  if (rules === undefined) {
    const list: AllowRule[] = [];
    config.egress.allow.forEach((e, i) => {
      const r = parseAllowEntry(e, i);
      if (typeof r !== 'string') list.push(r); // invalid entries were refused at load
    });
    rules = list;
    compiled.set(config.egress, rules);
  }
  return rules;
}

/** Decides whether an external destination (not a mesh service) may be reached, and why. */
export function decideEgress(config: MeshConfig, host: string, port: number): EgressDecision {
  if (config.egress.policy === 'allow-any') return { allowed: true, reason: 'egress.policy is allow-any' };
  let h = host.charCodeAt(0) === 91 /* [ */ ? host.slice(1, -1) : host;
  if (h.endsWith('.')) h = h.slice(0, -1);
  h = h.toLowerCase();
  const family = isIP(h);
  let hostOnly: AllowRule | undefined;
  for (const r of rulesFor(config)) {
    if (!hostMatches(r.host, h, family)) continue;
    if (port >= r.portMin && port <= r.portMax) {
      return { allowed: true, reason: `egress.allow[${r.index}] "${r.text}" matches ${h}:${port}`, rule: r.text };
    }
    hostOnly ??= r;
  }
  if (hostOnly !== undefined) {
    return { allowed: false, reason: `${h} matches egress.allow[${hostOnly.index}] "${hostOnly.text}" but port ${port} is not allowed (egress.policy is registry-only)` };
  }
  return { allowed: false, reason: `${h}:${port} is not a mesh service, matches no egress.allow entry, and egress.policy is registry-only` };
}
