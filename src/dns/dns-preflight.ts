// What `validate` and `run` check about the dns section before anything binds: the package,
// the ranges, the upstreams, and that DNS capture can reach the listener (REDIRECT delivers to
// the loopback of the packet's own network namespace).
import type { MeshConfig } from '../config/schema.js';
import type { ErrorCode } from '../core/errors.js';
import { isMeshError } from '../core/errors.js';
import { parseListenAddress } from '../core/address.js';
import { canonicalHost, isLoopback } from '../core/canonical-address.js';
import { assertOptionalInstalled } from '../core/optional-dependency.js';
import { vipRange, vipRange6 } from './virtual-ips.js';
import { defaultUpstreams, parseUpstreams } from './forwarder.js';

export interface DnsPreflight {
  readonly problems: { code: ErrorCode; message: string }[];
  readonly checked: string[];
  readonly warnings: string[];
}

export function dnsPreflight(config: MeshConfig, out: DnsPreflight): void {
  const dns = config.dns;
  const fail = (e: unknown): void => {
    if (!isMeshError(e)) throw e;
    out.problems.push({ code: e.code, message: e.message });
  };
  if (config.transparent.redirect.captureDns && !dns.enabled) {
    out.problems.push({ code: 'MESH_ERR_CONFIG_INVALID', message: 'transparent.redirect.captureDns needs dns.enabled: true (the sidecar answers the captured queries)' });
  }
  if (!dns.enabled) return;
  try {
    assertOptionalInstalled('dns-packet', 'dns.enabled');
    out.checked.push('dns.enabled: the dns-packet package is installed');
  } catch (e) {
    fail(e);
  }
  try {
    vipRange(dns.cidr);
    if (dns.ipv6Cidr !== undefined) vipRange6(dns.ipv6Cidr);
    out.checked.push(`dns.cidr ${dns.cidr}${dns.ipv6Cidr !== undefined ? ` and dns.ipv6Cidr ${dns.ipv6Cidr}` : ''}`);
  } catch (e) {
    fail(e);
  }
  const a = parseListenAddress(dns.listen);
  if (a?.kind !== 'tcp') {
    out.problems.push({ code: 'MESH_ERR_CONFIG_INVALID', message: `dns.listen: "${dns.listen}" is not ip:port` });
    return;
  }
  const host = canonicalHost(a.host.toLowerCase()) ?? a.host;
  if (!isLoopback(host)) out.warnings.push(`dns.listen: ${dns.listen} is reachable from other hosts: the DNS server answers and forwards for anyone who can reach it`);
  if (config.transparent.redirect.captureDns && (!/^127\./.test(host) || a.port === 0)) {
    out.problems.push({
      code: 'MESH_ERR_CONFIG_INVALID',
      message: `transparent.redirect.captureDns: dns.listen must be an IPv4 loopback address with a fixed port (got ${dns.listen}): captured queries are redirected to the loopback of the same network namespace`,
    });
  }
  try {
    const ups = dns.upstreams !== undefined ? parseUpstreams(dns.upstreams) : defaultUpstreams();
    if (ups.length === 0) out.warnings.push('dns: no upstream resolvers (dns.upstreams unset and no nameserver in /etc/resolv.conf): names outside the mesh will get SERVFAIL');
    else out.checked.push(`dns upstreams: ${ups.map((u) => `${u.host}:${u.port}`).join(', ')}`);
  } catch (e) {
    fail(e);
  }
  if (!config.transparent.enabled) out.warnings.push('dns.enabled without transparent.enabled: names resolve to virtual IPs, but only captured connections reach a service through them');
}
