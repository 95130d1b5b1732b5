// nftables rule generation: one `inet dreammesh` table owning two nat chains. Install and
// uninstall are each one `nft -f` transaction, so they are atomic and idempotent:
//   install   = "table inet dreammesh" (create if absent) + "delete table" + the full table
//   uninstall = the same create + delete, which also succeeds when nothing was installed.
// Nothing outside the dreammesh table is ever touched. The same decisions as the iptables
// generator, in the same order (see iptables.ts for the reasoning).
import type { RedirectSpec, Cidr } from './redirect-spec.js';
import { specHash } from './redirect-spec.js';

export const NFT_TABLE = 'dreammesh';
export const NFT_FAMILY = 'inet';

function set(items: readonly (string | number)[]): string {
  return items.length === 1 ? String(items[0]) : `{ ${items.join(', ')} }`;
}

function byFamily(cidrs: readonly Cidr[], family: 4 | 6): string[] {
  return cidrs.filter((c) => c.family === family).map((c) => c.text);
}

/** The table definition (nft -f syntax). */
export function nftTable(spec: RedirectSpec): string {
  const o: string[] = [];
  o.push('\t\ttype nat hook output priority -100; policy accept;');
  o.push(...nftDnsJumps(spec));
  o.push('\t\tmeta l4proto != tcp return');
  if (!spec.ipv6) o.push('\t\tmeta nfproto ipv6 return');
  if (spec.proxyUid !== undefined) o.push(`\t\tmeta skuid ${spec.proxyUid} return`);
  if (spec.proxyGid !== undefined) o.push(`\t\tmeta skgid ${spec.proxyGid} return`);
  if (spec.proxyMark !== undefined) o.push(`\t\tmeta mark ${hex(spec.proxyMark)} return`);
  o.push(`\t\toifname "lo" return comment "dreammesh:${specHash(spec)}"`);
  o.push('\t\tip daddr 127.0.0.0/8 return');
  if (spec.ipv6) o.push('\t\tip6 daddr ::1 return');
  if (spec.excludeOutboundPorts.length > 0) o.push(`\t\ttcp dport ${set(spec.excludeOutboundPorts)} return`);
  const ex4 = byFamily(spec.excludeOutboundCidrs, 4);
  const ex6 = byFamily(spec.excludeOutboundCidrs, 6);
  if (ex4.length > 0) o.push(`\t\tip daddr ${set(ex4)} return`);
  if (ex6.length > 0) o.push(`\t\tip6 daddr ${set(ex6)} return`);
  const to = `meta l4proto tcp redirect to :${spec.outboundPort}`;
  if (spec.includeOutboundCidrs === '*') o.push(`\t\t${to}`);
  else {
    const in4 = byFamily(spec.includeOutboundCidrs, 4);
    const in6 = byFamily(spec.includeOutboundCidrs, 6);
    if (in4.length > 0) o.push(`\t\tip daddr ${set(in4)} ${to}`);
    if (in6.length > 0) o.push(`\t\tip6 daddr ${set(in6)} ${to}`);
  }
  const i: string[] = [];
  i.push('\t\ttype nat hook prerouting priority -100; policy accept;');
  i.push('\t\tmeta l4proto != tcp return');
  if (!spec.ipv6) i.push('\t\tmeta nfproto ipv6 return');
  if (spec.excludeInboundPorts.length > 0) i.push(`\t\ttcp dport ${set(spec.excludeInboundPorts)} return`);
  const toIn = `redirect to :${spec.inboundPort}`;
  if (spec.tproxy !== undefined) {
    // Inbound goes by TPROXY in the divert chain below; nothing is NATed here.
  } else if (spec.includeInboundPorts === '*') i.push(`\t\tmeta l4proto tcp ${toIn}`);
  else if (spec.includeInboundPorts.length > 0) i.push(`\t\ttcp dport ${set(spec.includeInboundPorts)} ${toIn}`);
  const divert = spec.tproxy === undefined ? [] : ['\tchain divert {', ...divertChain(spec, spec.tproxy), '\t}', '\tchain reply {', ...replyChain(spec.tproxy), '\t}'];
  return [`table ${NFT_FAMILY} ${NFT_TABLE} {`, '\tchain output {', ...o, '\t}', '\tchain prerouting {', ...i, '\t}', ...divert, ...nftDnsChain(spec), '}', ''].join('\n');
}

// DNS capture (spec.dns, IPv4 only): port 53 over UDP and TCP jumps to chain dns first, before
// anything returns (a resolver may be an address of this host, reached through lo); the proxy
// uid/gid return from it, so the sidecar's forwarded queries go out.
export const NFT_DNS_CHAIN = 'dns';

function nftDnsJumps(spec: RedirectSpec): string[] {
  if (spec.dns === undefined) return [];
  return [`\t\tmeta nfproto ipv4 udp dport 53 jump ${NFT_DNS_CHAIN}`, `\t\tmeta nfproto ipv4 tcp dport 53 jump ${NFT_DNS_CHAIN}`];
}

function nftDnsChain(spec: RedirectSpec): string[] {
  if (spec.dns === undefined) return [];
  const d: string[] = [];
  if (spec.proxyUid !== undefined) d.push(`\t\tmeta skuid ${spec.proxyUid} return`);
  if (spec.proxyGid !== undefined) d.push(`\t\tmeta skgid ${spec.proxyGid} return`);
  if (spec.proxyMark !== undefined) d.push(`\t\tmeta mark ${hex(spec.proxyMark)} return`);
  d.push(`\t\tmeta l4proto udp redirect to :${spec.dns.port}`, `\t\tmeta l4proto tcp redirect to :${spec.dns.port}`);
  return [`\tchain ${NFT_DNS_CHAIN} {`, ...d, '\t}'];
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * inboundMode tproxy (mangle prerouting): packets of connections already owned by a transparent
 * socket are marked and accepted; new connections to the included ports are handed to the
 * inbound listener (IP_TRANSPARENT) unchanged — no NAT, no conntrack rewrite — and marked, so
 * the ip rule routes them to "local default dev lo". Loopback (the sidecar's own hop to the
 * app) is never diverted. The comment records mark and table for uninstall.
 */
function divertChain(spec: RedirectSpec, t: { mark: number; table: number }): string[] {
  const d: string[] = [];
  d.push('\t\ttype filter hook prerouting priority mangle; policy accept;');
  d.push('\t\tmeta l4proto != tcp return');
  if (!spec.ipv6) d.push('\t\tmeta nfproto ipv6 return');
  d.push('\t\tiifname "lo" return');
  if (spec.excludeInboundPorts.length > 0) d.push(`\t\ttcp dport ${set(spec.excludeInboundPorts)} return`);
  d.push(`\t\tmeta l4proto tcp socket transparent 1 meta mark set ${hex(t.mark)} accept comment "${TPROXY_COMMENT}:${t.mark}:${t.table}"`);
  const to = `tproxy to :${spec.inboundPort} meta mark set ${hex(t.mark)} accept`;
  if (spec.includeInboundPorts === '*') d.push(`\t\tmeta l4proto tcp ${to}`);
  else if (spec.includeInboundPorts.length > 0) d.push(`\t\ttcp dport ${set(spec.includeInboundPorts)} ${to}`);
  return d;
}

/**
 * tproxyOriginalSource: the sidecar's connection to the app is bound to the client's address and
 * carries the tproxy mark; the connection keeps it (ct mark), and the app's replies, addressed to
 * the client, get it back, so the ip rule routes them over lo to the sidecar instead of out.
 */
function replyChain(t: { mark: number }): string[] {
  return ['\t\ttype route hook output priority mangle; policy accept;', `\t\tmeta mark ${hex(t.mark)} ct mark set meta mark`, `\t\tct mark ${hex(t.mark)} meta mark set ct mark`];
}

export const TPROXY_COMMENT = 'dreammesh-tproxy';

/** mark and table of an installed TPROXY divert chain, from `nft list table inet dreammesh`. */
export function nftInstalledTproxy(listing: string): { mark: number; table: number } | null {
  const m = new RegExp(`comment "${TPROXY_COMMENT}:(\\d+):(\\d+)"`).exec(listing);
  return m === null ? null : { mark: Number(m[1]), table: Number(m[2]) };
}

export function nftInstallScript(spec: RedirectSpec): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${nftTable(spec)}`;
}

export function nftUninstallScript(): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n`;
}

/** The dreammesh:<hash> stamp found in `nft list table inet dreammesh` output, if any. */
export function nftInstalledHash(listing: string): string | null {
  return /comment "dreammesh:([0-9a-f]+)"/.exec(listing)?.[1] ?? null;
}
