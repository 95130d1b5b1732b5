// The capture rules' settings, normalized and validated once: from the config file's
// transparent.redirect section, then command-line flags on top. Every generator (iptables,
// nftables), `dreammesh explain` and `redirect show` read this one value, so a bad CIDR or port
// is refused here, before anything touches the kernel.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { MeshConfig } from '../../config/schema.js';
import { parseListenAddress } from '../../core/address.js';
import { MeshError } from '../../core/errors.js';

export type BackendName = 'iptables' | 'iptables-nft' | 'iptables-legacy' | 'nftables';
export type BackendChoice = 'auto' | BackendName;

export interface Cidr {
  readonly family: 4 | 6;
  /** Canonical text, always with a prefix length ("10.0.0.0/8", "fd00::/8"). */
  readonly text: string;
  readonly address: string;
  readonly prefix: number;
}

export interface RedirectSpec {
  readonly backend: BackendChoice;
  readonly proxyUid: number | undefined;
  readonly proxyGid: number | undefined;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** '*' = every destination; [] = no outbound capture. */
  readonly includeOutboundCidrs: '*' | readonly Cidr[];
  readonly excludeOutboundCidrs: readonly Cidr[];
  readonly excludeOutboundPorts: readonly number[];
  /** '*' = every port; [] = no inbound capture. */
  readonly includeInboundPorts: '*' | readonly number[];
  readonly excludeInboundPorts: readonly number[];
  readonly ipv6: boolean;
  /**
   * captureDns: the app's DNS (UDP and TCP port 53, IPv4) goes to this port of the DNS listener
   * (127.0.0.1). Absent when off, so the settings hash of rule sets without DNS is unchanged.
   */
  readonly dns?: { readonly port: number };
  /** Packets carrying this SO_MARK (the sidecar's own upstream sockets) are never captured. */
  readonly proxyMark?: number;
  /** inboundMode tproxy: mangle TPROXY to the inbound port, fwmark + routing table (undefined = REDIRECT). */
  readonly tproxy?: { readonly mark: number; readonly table: number };
}

/** What flags may override (strings as typed on the command line). */
export interface RedirectFlags {
  backend?: string;
  proxyUid?: string;
  proxyGid?: string;
  outboundPort?: string;
  inboundPort?: string;
  includeOutboundCidrs?: string;
  excludeOutboundCidrs?: string;
  excludeOutboundPorts?: string;
  includeInboundPorts?: string;
  excludeInboundPorts?: string;
  ipv6?: boolean;
  captureDns?: boolean;
  proxyMark?: string;
  inboundMode?: string;
}

const BACKENDS = ['auto', 'iptables', 'iptables-nft', 'iptables-legacy', 'nftables'] as const;

function invalid(field: string, msg: string): MeshError {
  return new MeshError('MESH_ERR_REDIRECT_INVALID', `${field}: ${msg}`);
}

/** Parses "10.0.0.0/8", "10.1.2.3" (/32), "fd00::/8", "::1" (/128); throws naming the field. */
export function parseCidr(s: string, field: string): Cidr {
  const t = s.trim();
  const slash = t.indexOf('/');
  const addr = slash < 0 ? t : t.slice(0, slash);
  const fam = isIP(addr);
  if (fam === 0) throw invalid(field, `"${s}" is not an IP address or CIDR`);
  const max = fam === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw invalid(field, `"${s}" has an invalid prefix length (0-${max})`);
    prefix = Number(p);
  }
  const address = fam === 4 ? maskV4(addr, prefix) : addr.toLowerCase();
  return { family: fam as 4 | 6, address, prefix, text: `${address}/${prefix}` };
}

function maskV4(addr: string, prefix: number): string {
  const n = v4ToInt(addr);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  const m = (n & mask) >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.');
}

export function v4ToInt(addr: string): number {
  return addr.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
}

export function parsePort(s: string | number, field: string): number {
  const t = String(s).trim();
  if (!/^\d{1,5}$/.test(t) || Number(t) < 1 || Number(t) > 65535) throw invalid(field, `"${s}" is not a port (1-65535)`);
  return Number(t);
}

function parseId(s: string | number, field: string): number {
  const t = String(s).trim();
  if (!/^\d{1,10}$/.test(t) || Number(t) > 4294967294) throw invalid(field, `"${s}" is not a numeric id`);
  return Number(t);
}

/** A mark or table id: decimal or 0x hex, 1..2^32-1. */
export function parseMark(s: string | number, field: string): number {
  const t = String(s).trim().toLowerCase();
  const n = /^0x[0-9a-f]{1,8}$/.test(t) ? parseInt(t.slice(2), 16) : /^\d{1,10}$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw invalid(field, `"${s}" is not a mark (1-4294967295, decimal or 0x hex)`);
  return n;
}

function list(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

function uniqSorted(ports: number[]): number[] {
  return [...new Set(ports)].sort((a, b) => a - b);
}

function cidrs(items: readonly string[], field: string): Cidr[] {
  const seen = new Map<string, Cidr>();
  for (const i of items) {
    if (i === '*') throw invalid(field, '"*" is only allowed alone in includeOutboundCidrs');
    const c = parseCidr(i, field);
    seen.set(c.text, c);
  }
  return [...seen.values()];
}

const DEFAULT_INBOUND_PORT = 15006;

function portOf(listen: string | undefined): number | undefined {
  if (listen === undefined) return undefined;
  const a = parseListenAddress(listen);
  return a?.kind === 'tcp' && a.port > 0 ? a.port : undefined;
}

/** Builds the spec from config plus flags; throws MESH_ERR_REDIRECT_INVALID naming the field. */
export function redirectSpec(config: MeshConfig, flags: RedirectFlags = {}): RedirectSpec {
  const r = config.transparent.redirect;
  const backend = flags.backend ?? r.backend;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw invalid('--backend', `"${backend}" is not one of ${BACKENDS.join(', ')}`);
  const proxyUid = flags.proxyUid !== undefined ? parseId(flags.proxyUid, '--proxy-uid') : r.proxyUid;
  const proxyGid = flags.proxyGid !== undefined ? parseId(flags.proxyGid, '--proxy-gid') : r.proxyGid;
  const proxyMark = flags.proxyMark !== undefined ? parseMark(flags.proxyMark, '--proxy-mark') : r.proxyMark;
  if (proxyUid === undefined && proxyGid === undefined && proxyMark === undefined) {
    throw invalid('--proxy-uid', "the sidecar's uid (or --proxy-gid, or --proxy-mark) is required, otherwise its own upstream connections would be captured and loop");
  }
  const inboundMode = flags.inboundMode ?? r.inboundMode;
  if (inboundMode !== 'redirect' && inboundMode !== 'tproxy') throw invalid('--inbound-mode', `"${inboundMode}" is not one of redirect, tproxy`);
  const tproxy = inboundMode === 'tproxy' ? { mark: r.tproxyMark, table: r.tproxyTable } : undefined;
  if (tproxy !== undefined && proxyMark === tproxy.mark) throw invalid('transparent.redirect.tproxyMark', `must differ from proxyMark (${proxyMark})`);
  const outboundPort = flags.outboundPort !== undefined ? parsePort(flags.outboundPort, '--outbound-port') : (r.outboundPort ?? portOf(config.listeners.outbound));
  const explicitInbound = flags.inboundPort !== undefined ? parsePort(flags.inboundPort, '--inbound-port') : (r.inboundPort ?? portOf(config.listeners.inbound));
  if (outboundPort === undefined) throw invalid('--outbound-port', 'required when listeners.outbound is not a fixed TCP port');

  const incRaw = flags.includeOutboundCidrs !== undefined ? list(flags.includeOutboundCidrs) : [...r.includeOutboundCidrs];
  const includeField = flags.includeOutboundCidrs !== undefined ? '--include-outbound-cidrs' : 'transparent.redirect.includeOutboundCidrs';
  const includeOutboundCidrs = incRaw.length === 1 && incRaw[0] === '*' ? '*' : cidrs(incRaw, includeField);
  const excludeOutboundCidrs = flags.excludeOutboundCidrs !== undefined ? cidrs(list(flags.excludeOutboundCidrs), '--exclude-outbound-cidrs') : cidrs(r.excludeOutboundCidrs, 'transparent.redirect.excludeOutboundCidrs');
  const excludeOutboundPorts = uniqSorted(flags.excludeOutboundPorts !== undefined ? list(flags.excludeOutboundPorts).map((p) => parsePort(p, '--exclude-outbound-ports')) : [...r.excludeOutboundPorts]);
  const incIn = flags.includeInboundPorts !== undefined ? list(flags.includeInboundPorts) : r.includeInboundPorts.map(String);
  let includeInboundPorts: '*' | number[];
  if (incIn.length === 1 && incIn[0] === '*') includeInboundPorts = '*';
  else includeInboundPorts = uniqSorted(incIn.map((p) => parsePort(p, flags.includeInboundPorts !== undefined ? '--include-inbound-ports' : 'transparent.redirect.includeInboundPorts')));
  if (explicitInbound === undefined && (includeInboundPorts === '*' || includeInboundPorts.length > 0)) {
    throw invalid('--inbound-port', 'required to capture inbound traffic when there is no inbound listener on a fixed TCP port (set app, and listeners.inbound)');
  }
  // Without inbound capture the inbound chain is never entered; the port of the historic
  // default listener keeps the rule set (and its hash) what it was.
  const inboundPort = explicitInbound ?? DEFAULT_INBOUND_PORT;
  const excludeInboundPorts = uniqSorted(flags.excludeInboundPorts !== undefined ? list(flags.excludeInboundPorts).map((p) => parsePort(p, '--exclude-inbound-ports')) : [...r.excludeInboundPorts]);
  const ipv6 = flags.ipv6 ?? r.ipv6;
  if (!ipv6) {
    const v6 = [...(includeOutboundCidrs === '*' ? [] : includeOutboundCidrs), ...excludeOutboundCidrs].find((c) => c.family === 6);
    if (v6 !== undefined) throw invalid('--ipv6', `IPv6 CIDR ${v6.text} given but IPv6 capture is off`);
  }
  const dns = dnsCapture(config, flags.captureDns ?? r.captureDns, flags.captureDns !== undefined ? '--capture-dns' : 'transparent.redirect.captureDns');
  // Optional keys only when set: the settings hash of an install without them stays the same.
  return {
    backend: backend as BackendChoice,
    proxyUid,
    proxyGid,
    outboundPort,
    inboundPort,
    includeOutboundCidrs,
    excludeOutboundCidrs,
    excludeOutboundPorts,
    includeInboundPorts,
    excludeInboundPorts,
    ipv6,
    ...(dns !== undefined ? { dns } : {}),
    ...(proxyMark !== undefined ? { proxyMark } : {}),
    ...(tproxy !== undefined ? { tproxy } : {}),
  };
}

/**
 * DNS capture redirects port 53 to dns.listen's port on the loopback address of the packet's
 * own network namespace, so the DNS listener must be on an IPv4 loopback address in that
 * namespace, on a fixed port.
 */
function dnsCapture(config: MeshConfig, on: boolean, field: string): { port: number } | undefined {
  if (!on) return undefined;
  if (!config.dns.enabled) throw invalid(field, 'DNS capture needs dns.enabled: true (the sidecar answers the captured queries)');
  const a = parseListenAddress(config.dns.listen);
  if (a?.kind !== 'tcp' || !/^127\./.test(a.host) || a.port === 0) {
    throw invalid(
      field,
      `dns.listen must be an IPv4 loopback address with a fixed port (e.g. 127.0.0.1:15053) for DNS capture: REDIRECT delivers to the loopback of the same network namespace (got ${config.dns.listen})`,
    );
  }
  return { port: a.port };
}

/** Short fingerprint of the settings that shape the rules (not the backend), stamped into them. */
export function specHash(spec: RedirectSpec): string {
  const { backend: _b, ...rest } = spec;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 12);
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const fam = isIP(ip);
  if (fam !== c.family) return false;
  if (fam === 4) {
    if (c.prefix === 0) return true;
    const mask = (~0 << (32 - c.prefix)) >>> 0;
    return (v4ToInt(ip) & mask) >>> 0 === (v4ToInt(c.address) & mask) >>> 0;
  }
  const a = v6ToBig(ip);
  const b = v6ToBig(c.address);
  const shift = BigInt(128 - c.prefix);
  return a >> shift === b >> shift;
}

function v6ToBig(addr: string): bigint {
  let s = addr.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = v4ToInt(v4[1]!);
    s = s.slice(0, v4.index) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}
