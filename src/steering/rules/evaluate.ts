// What the capture rules do with one outbound connection, evaluated in the same order as the
// generated iptables/nftables rules (see iptables.ts). Used by `dreammesh explain`; a unit
// test runs it against the generated rules' intent.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { RedirectSpec } from './redirect-spec.js';
import { cidrContains, parseCidr } from './redirect-spec.js';

export type CaptureVerdict = { readonly captured: false; readonly rule: string; readonly why: string } | { readonly captured: true; readonly rule: string; readonly why: string; readonly to: number };

const LOOPBACK4 = parseCidr('127.0.0.0/8', 'loopback');

function isLocalAddress(ip: string): boolean {
  for (const addrs of Object.values(networkInterfaces())) if (addrs?.some((a) => a.address === ip)) return true;
  return false;
}

/** ip must be an address literal; uid/gid undefined = "an application uid" (not the proxy's). */
export function evaluateOutbound(spec: RedirectSpec, ip: string, port: number, who: { uid?: number; gid?: number } = {}): CaptureVerdict {
  const fam = isIP(ip);
  if (fam === 0) throw new Error(`${ip} is not an IP address`);
  if (fam === 6 && !spec.ipv6) return { captured: false, rule: 'ipv6 off', why: 'IPv6 capture is off (transparent.redirect.ipv6 / --ipv6)' };
  if (who.uid !== undefined && spec.proxyUid !== undefined && who.uid === spec.proxyUid) {
    return { captured: false, rule: `owner uid ${spec.proxyUid}`, why: `uid ${who.uid} is the proxy uid: the sidecar's own connections are never captured` };
  }
  if (who.gid !== undefined && spec.proxyGid !== undefined && who.gid === spec.proxyGid) {
    return { captured: false, rule: `owner gid ${spec.proxyGid}`, why: `gid ${who.gid} is the proxy gid: never captured` };
  }
  // DNS capture comes before the loopback and local-address returns (a stub at 127.0.0.53 too).
  if (spec.dns !== undefined && port === 53 && fam === 4) {
    return { captured: true, rule: 'dns', why: 'port 53 with DNS capture on (captureDns): TCP and UDP', to: spec.dns.port };
  }
  if ((fam === 4 && cidrContains(LOOPBACK4, ip)) || ip === '::1') return { captured: false, rule: 'loopback', why: `${ip} is a loopback address: local traffic is never captured` };
  if (isLocalAddress(ip)) return { captured: false, rule: '-o lo', why: `${ip} is an address of this host: it leaves through lo and is never captured` };
  if (spec.excludeOutboundPorts.includes(port)) return { captured: false, rule: `exclude port ${port}`, why: `port ${port} is in excludeOutboundPorts` };
  const ex = spec.excludeOutboundCidrs.find((c) => cidrContains(c, ip));
  if (ex !== undefined) return { captured: false, rule: `exclude ${ex.text}`, why: `${ip} is in excluded CIDR ${ex.text} (excludeOutboundCidrs)` };
  if (spec.includeOutboundCidrs === '*') return { captured: true, rule: 'include *', why: 'includeOutboundCidrs is "*"', to: spec.outboundPort };
  const inc = spec.includeOutboundCidrs.find((c) => cidrContains(c, ip));
  if (inc !== undefined) return { captured: true, rule: `include ${inc.text}`, why: `${ip} is in included CIDR ${inc.text}`, to: spec.outboundPort };
  return { captured: false, rule: 'not included', why: `${ip} is in none of includeOutboundCidrs (${spec.includeOutboundCidrs.map((c) => c.text).join(', ') || 'empty: no outbound capture'})` };
}
