// iptables rule generation (nat table, and mangle for inboundMode tproxy; iptables-save syntax) for one address family, and the
// iptables-restore --noflush scripts that install and uninstall them in one commit.
//
// Layout (Istio-like, names prefixed DREAMMESH_ so uninstall can find exactly its own):
//   OUTPUT     -p tcp -j DREAMMESH_OUTPUT
//   PREROUTING -p tcp -j DREAMMESH_INBOUND
//   DREAMMESH_OUTPUT:   proxy uid/gid/mark → RETURN (the sidecar's own upstream connections)
//                       -o lo → RETURN (loopback and the host's own addresses: local traffic,
//                         including the redirected hop itself, is never captured)
//                       127.0.0.0/8 | ::1 → RETURN, excluded ports/CIDRs → RETURN
//                       included CIDRs (or all) → DREAMMESH_REDIRECT (REDIRECT to outbound port)
//   DREAMMESH_INBOUND:  excluded ports → RETURN, included ports (or all) → DREAMMESH_IN_REDIRECT
// Rules are written exactly as iptables-save prints them, so `show` can compare text.
import type { RedirectSpec } from './redirect-spec.js';
import { specHash } from './redirect-spec.js';

export const CHAIN_PREFIX = 'DREAMMESH_';
export const CHAINS = ['DREAMMESH_OUTPUT', 'DREAMMESH_REDIRECT', 'DREAMMESH_INBOUND', 'DREAMMESH_IN_REDIRECT'] as const;
export const JUMPS = ['-A OUTPUT -p tcp -j DREAMMESH_OUTPUT', '-A PREROUTING -p tcp -j DREAMMESH_INBOUND'] as const;

// DNS capture (spec.dns, IPv4 only): its own chain, reached by UDP port 53 from OUTPUT and by
// TCP port 53 from the first rule of DREAMMESH_OUTPUT (before `-o lo`: a resolver may be an
// address of this host). Proxy uid/gid → RETURN, so the sidecar's forwarded queries go out.
export const DNS_CHAIN = 'DREAMMESH_DNS';
const DNS_JUMP = `-A OUTPUT -p udp -m udp --dport 53 -j ${DNS_CHAIN}`;

/** The chains an install declares for this spec. */
export function chainsFor(spec: RedirectSpec, family: 4 | 6): readonly string[] {
  return spec.dns !== undefined && family === 4 ? [...CHAINS, DNS_CHAIN] : CHAINS;
}

/** The jumps from built-in chains an install wants for this spec and family. */
export function jumpsFor(spec: RedirectSpec, family: 4 | 6): readonly string[] {
  return spec.dns !== undefined && family === 4 ? [...JUMPS, DNS_JUMP] : JUMPS;
}

function iptablesDnsRules(spec: RedirectSpec, family: 4 | 6): string[] {
  if (spec.dns === undefined || family !== 4) return [];
  const out = [`-A DREAMMESH_OUTPUT -p tcp -m tcp --dport 53 -j ${DNS_CHAIN}`];
  if (spec.proxyUid !== undefined) out.push(`-A ${DNS_CHAIN} -m owner --uid-owner ${spec.proxyUid} -j RETURN`);
  if (spec.proxyGid !== undefined) out.push(`-A ${DNS_CHAIN} -m owner --gid-owner ${spec.proxyGid} -j RETURN`);
  if (spec.proxyMark !== undefined) out.push(`-A ${DNS_CHAIN} -m mark --mark 0x${spec.proxyMark.toString(16)} -j RETURN`);
  out.push(`-A ${DNS_CHAIN} -p udp -j REDIRECT --to-ports ${spec.dns.port}`, `-A ${DNS_CHAIN} -p tcp -j REDIRECT --to-ports ${spec.dns.port}`);
  return out;
}

/** The rules inside DreamMesh's chains, in iptables-save form (without the jumps). */
export function iptablesChainRules(spec: RedirectSpec, family: 4 | 6): string[] {
  const out: string[] = [];
  const add = (s: string): number => out.push(s);
  add(`-A DREAMMESH_REDIRECT -p tcp -j REDIRECT --to-ports ${spec.outboundPort}`);
  add(`-A DREAMMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${spec.inboundPort}`);
  out.push(...iptablesDnsRules(spec, family));
  if (spec.proxyUid !== undefined) add(`-A DREAMMESH_OUTPUT -m owner --uid-owner ${spec.proxyUid} -j RETURN`);
  if (spec.proxyGid !== undefined) add(`-A DREAMMESH_OUTPUT -m owner --gid-owner ${spec.proxyGid} -j RETURN`);
  if (spec.proxyMark !== undefined) add(`-A DREAMMESH_OUTPUT -m mark --mark 0x${spec.proxyMark.toString(16)} -j RETURN`);
  add(`-A DREAMMESH_OUTPUT -o lo -m comment --comment "dreammesh:${specHash(spec)}" -j RETURN`);
  add(family === 4 ? '-A DREAMMESH_OUTPUT -d 127.0.0.0/8 -j RETURN' : '-A DREAMMESH_OUTPUT -d ::1/128 -j RETURN');
  for (const p of spec.excludeOutboundPorts) add(`-A DREAMMESH_OUTPUT -p tcp -m tcp --dport ${p} -j RETURN`);
  for (const c of spec.excludeOutboundCidrs) if (c.family === family) add(`-A DREAMMESH_OUTPUT -d ${c.text} -j RETURN`);
  if (spec.includeOutboundCidrs === '*') add('-A DREAMMESH_OUTPUT -j DREAMMESH_REDIRECT');
  else for (const c of spec.includeOutboundCidrs) if (c.family === family) add(`-A DREAMMESH_OUTPUT -d ${c.text} -j DREAMMESH_REDIRECT`);
  for (const p of spec.excludeInboundPorts) add(`-A DREAMMESH_INBOUND -p tcp -m tcp --dport ${p} -j RETURN`);
  // inboundMode tproxy: inbound goes by TPROXY in the mangle table (below); nothing is NATed.
  if (spec.tproxy !== undefined) return out;
  if (spec.includeInboundPorts === '*') add('-A DREAMMESH_INBOUND -p tcp -j DREAMMESH_IN_REDIRECT');
  else for (const p of spec.includeInboundPorts) add(`-A DREAMMESH_INBOUND -p tcp -m tcp --dport ${p} -j DREAMMESH_IN_REDIRECT`);
  return out;
}

export type IptablesTable = 'nat' | 'mangle';

// inboundMode tproxy (mangle table, the same decisions as nftables' divert and reply chains):
//   PREROUTING -p tcp -j DREAMMESH_DIVERT
//   OUTPUT     -p tcp -j DREAMMESH_REPLY
//   DREAMMESH_DIVERT: -i lo → RETURN (the sidecar's own hop to the app), excluded ports → RETURN,
//                     packets of a connection owned by a transparent socket → DREAMMESH_DIVERT_MARK
//                     (mark M, ACCEPT), included ports (or all) → TPROXY to the inbound port with
//                     mark M, so the ip rule routes them to "local default dev lo"
//   DREAMMESH_REPLY:  tproxyOriginalSource: mark M is kept on the connection (CONNMARK) and given
//                     back to the app's replies, which the ip rule then routes over lo to the sidecar.
// The socket rule's comment records mark and routing table for uninstall.
export const MANGLE_CHAINS = ['DREAMMESH_DIVERT', 'DREAMMESH_DIVERT_MARK', 'DREAMMESH_REPLY'] as const;
export const MANGLE_JUMPS = ['-A PREROUTING -p tcp -j DREAMMESH_DIVERT', '-A OUTPUT -p tcp -j DREAMMESH_REPLY'] as const;
const TPROXY_COMMENT = 'dreammesh-tproxy';

/** The rules inside DreamMesh's mangle chains (iptables-save form); empty without tproxy. */
export function iptablesMangleRules(spec: RedirectSpec, family: 4 | 6): string[] {
  const t = spec.tproxy;
  if (t === undefined) return [];
  const m = `0x${t.mark.toString(16)}`;
  const out = ['-A DREAMMESH_DIVERT -i lo -j RETURN'];
  for (const p of spec.excludeInboundPorts) out.push(`-A DREAMMESH_DIVERT -p tcp -m tcp --dport ${p} -j RETURN`);
  out.push(`-A DREAMMESH_DIVERT -p tcp -m socket --transparent -m comment --comment "${TPROXY_COMMENT}:${t.mark}:${t.table}" -j DREAMMESH_DIVERT_MARK`);
  const to = `-j TPROXY --on-port ${spec.inboundPort} --on-ip ${family === 4 ? '0.0.0.0' : '::'} --tproxy-mark ${m}/0xffffffff`;
  if (spec.includeInboundPorts === '*') out.push(`-A DREAMMESH_DIVERT -p tcp ${to}`);
  else for (const p of spec.includeInboundPorts) out.push(`-A DREAMMESH_DIVERT -p tcp -m tcp --dport ${p} ${to}`);
  out.push(`-A DREAMMESH_DIVERT_MARK -j MARK --set-xmark ${m}/0xffffffff`, '-A DREAMMESH_DIVERT_MARK -j ACCEPT');
  out.push(`-A DREAMMESH_REPLY -m mark --mark ${m} -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff`);
  out.push(`-A DREAMMESH_REPLY -m connmark --mark ${m} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`);
  return out;
}

/** mark and table of an installed TPROXY divert chain, from the parsed mangle table. */
export function iptablesInstalledTproxy(mangle: NatState): { mark: number; table: number } | null {
  for (const r of mangle.rules) {
    const m = new RegExp(`--comment "?${TPROXY_COMMENT}:(\\d+):(\\d+)"?`).exec(r);
    if (m !== null) return { mark: Number(m[1]), table: Number(m[2]) };
  }
  return null;
}

/**
 * Marker chains: with iptables-nft the nat table and its base chains are created on first use,
 * so "exactly as before" after uninstall means deleting what our install created. An empty
 * DREAMMESH_MADE_<X> chain records that we created X (it lives in the kernel, so it survives
 * restarts and is per network namespace, like the rules themselves).
 */
export const MARK_TABLE = 'DREAMMESH_MADE_TABLE';
export const BASE_CHAINS = ['OUTPUT', 'PREROUTING'] as const;
export const markFor = (base: string): string => `DREAMMESH_MADE_${base}`;

export function isMarker(chain: string): boolean {
  return chain.startsWith('DREAMMESH_MADE_');
}

export interface NatState {
  /** The nat table appeared in the save output at all. */
  readonly table: boolean;
  /** Built-in chains declared in the nat section (e.g. OUTPUT, PREROUTING). */
  readonly baseChains: string[];
  /** DREAMMESH_* chains that exist. */
  readonly chains: string[];
  /** Rules (save form) in non-DreamMesh chains that jump to a DreamMesh chain. */
  readonly jumps: string[];
  /** Rules (save form) inside DreamMesh chains. */
  readonly rules: string[];
}

/** Reads DreamMesh's part of one table (nat by default) of `iptables-save` output. */
export function parseNatSave(save: string, tableName: IptablesTable = 'nat'): NatState {
  const chains: string[] = [];
  const jumps: string[] = [];
  const rules: string[] = [];
  const baseChains: string[] = [];
  let table = false;
  let inNat = false;
  for (const raw of save.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) inNat = line === `*${tableName}`;
    if (!inNat) continue;
    table = true;
    const decl = /^:(\S+)\s+(\S+)/.exec(line);
    if (decl && decl[1]!.startsWith(CHAIN_PREFIX)) chains.push(decl[1]!);
    else if (decl && decl[2] !== '-') baseChains.push(decl[1]!);
    const rule = /^-A (\S+) (.*)$/.exec(line);
    if (!rule) continue;
    if (rule[1]!.startsWith(CHAIN_PREFIX)) rules.push(line);
    else if (/(^|\s)-[jg] DREAMMESH_\S+/.test(rule[2]!)) jumps.push(line);
  }
  return { table, baseChains, chains, jumps, rules };
}

/**
 * The iptables-restore --noflush input that brings the nat table from `current` to the desired
 * state in one commit: our chains are (re)declared — which flushes them — and refilled; jumps
 * that are already exactly right stay where they are, stray or duplicate ones are deleted,
 * missing ones appended. Nothing outside DREAMMESH_* chains is touched.
 */
export function iptablesInstallScript(
  spec: RedirectSpec,
  family: 4 | 6,
  current: NatState,
  /** markCreated: what exists in nf_tables now (iptables-nft-save prints built-in chains whether or not they exist). */
  opts: { markCreated?: { table: boolean; baseChains: string[] } } = {},
  tableName: IptablesTable = 'nat',
): string {
  const lines = [`*${tableName}`];
  const chains = tableName === 'nat' ? chainsFor(spec, family) : MANGLE_CHAINS;
  const jumps = tableName === 'nat' ? jumpsFor(spec, family) : MANGLE_JUMPS;
  for (const c of chains) lines.push(`:${c} - [0:0]`);
  if (opts.markCreated) {
    const marks = new Set(current.chains.filter(isMarker));
    if (!opts.markCreated.table) marks.add(MARK_TABLE);
    for (const b of BASE_CHAINS) if (!opts.markCreated.baseChains.includes(b)) marks.add(markFor(b));
    for (const m of [...marks].sort()) lines.push(`:${m} - [0:0]`);
  }
  // Stale DreamMesh chains from another version: emptied and removed after the jumps go.
  const stale = current.chains.filter((c) => !chains.includes(c) && !(opts.markCreated !== undefined && isMarker(c)));
  const kept = new Set<string>();
  for (const j of current.jumps) {
    if (jumps.includes(j) && !kept.has(j)) kept.add(j);
    else lines.push(j.replace(/^-A /, '-D '));
  }
  for (const c of stale) lines.push(`:${c} - [0:0]`);
  for (const c of stale) lines.push(`-X ${c}`);
  lines.push(...(tableName === 'nat' ? iptablesChainRules(spec, family) : iptablesMangleRules(spec, family)));
  for (const j of jumps) if (!kept.has(j)) lines.push(j);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The iptables-restore --noflush input that removes every DreamMesh jump and chain; null if none. */
export function iptablesUninstallScript(current: NatState, tableName: IptablesTable = 'nat'): string | null {
  if (current.chains.length === 0 && current.jumps.length === 0) return null;
  const lines = [`*${tableName}`];
  for (const j of current.jumps) lines.push(j.replace(/^-A /, '-D '));
  for (const c of current.chains) lines.push(`:${c} - [0:0]`);
  for (const c of current.chains) lines.push(`-X ${c}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Differences between what is installed and what the spec wants (empty = matches). */
export function iptablesDiff(spec: RedirectSpec, family: 4 | 6, current: NatState, tableName: IptablesTable = 'nat'): string[] {
  const nat = tableName === 'nat';
  const want = nat ? iptablesChainRules(spec, family) : iptablesMangleRules(spec, family);
  const diffs: string[] = [];
  const chains = nat ? chainsFor(spec, family) : MANGLE_CHAINS;
  const jumps = nat ? jumpsFor(spec, family) : MANGLE_JUMPS;
  for (const c of chains) if (!current.chains.includes(c)) diffs.push(`missing chain ${c}`);
  for (const c of current.chains) if (!chains.includes(c) && !isMarker(c)) diffs.push(`unexpected chain ${c}`);
  for (const j of jumps) {
    const n = current.jumps.filter((x) => x === j).length;
    if (n === 0) diffs.push(`missing jump: ${j}`);
    if (n > 1) diffs.push(`duplicate jump (${n}x): ${j}`);
  }
  for (const j of current.jumps) if (!jumps.includes(j)) diffs.push(`unexpected jump: ${j}`);
  const order = (rs: readonly string[]): string[] => [...rs].sort((a, b) => chainOf(a).localeCompare(chainOf(b)) || 0);
  const a = order(want).join('\n');
  const b = order(current.rules).join('\n');
  if (a !== b) {
    for (const r of want) if (!current.rules.includes(r)) diffs.push(`missing rule: ${r}`);
    for (const r of current.rules) if (!want.includes(r)) diffs.push(`unexpected rule: ${r}`);
    if (diffs.length === 0) diffs.push('rules are in a different order');
  }
  return diffs;
}

function chainOf(rule: string): string {
  return rule.split(' ')[1] ?? '';
}
