// One spelling per address, so that the loop guard and the egress rules judge what a socket
// would actually reach. getaddrinfo accepts every IPv4 form of inet_aton (127.1, 0x7f000001,
// 2130706433, 0177.0.0.1), so a check on the text "127.0.0.1" alone is no check; the WHATWG
// URL host parser knows those forms, and IPv4-mapped IPv6 is reduced to its IPv4 address.
import { isIP } from 'node:net';

/** The last label is a number (decimal, or 0x hex): WHATWG then parses the host as IPv4. */
const NUMERIC_LAST_LABEL = /(^|\.)(\d+|0x[0-9a-f]*)\.?$/i;
const MAPPED_V4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * `host` is lower-case, without brackets. Returns the canonical address for anything that is
 * an address in some spelling (IPv4 dotted quad, compressed IPv6, IPv4 for IPv4-mapped IPv6),
 * the name unchanged for a domain name, and null for a host that looks numeric but is no
 * valid address (09, 1.2.3.4.5, 256.1.1.1): those must be refused, not passed to a resolver.
 */
export function canonicalHost(host: string): string | null {
  // Already canonical (dotted decimal without leading zeros): the common case, on every request.
  if (isIP(host) === 4) return host;
  const v6 = host.includes(':');
  if (!v6 && !NUMERIC_LAST_LABEL.test(host)) return host;
  if (v6 && isIP(host) !== 6) return null;
  let parsed: string;
  try {
    parsed = new URL(`http://${v6 ? `[${host}]` : host}/`).hostname;
  } catch {
    return null;
  }
  if (!v6) return isIP(parsed) === 4 ? parsed : null;
  const inner = parsed.slice(1, -1);
  const m = MAPPED_V4.exec(inner);
  if (m === null) return inner;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** 127/8, ::1, localhost: reachable from this host only. */
export function isLoopback(canonical: string): boolean {
  if (canonical === '::1' || canonical === 'localhost' || canonical.endsWith('.localhost')) return true;
  return isIP(canonical) === 4 && canonical.startsWith('127.');
}

/** Loopback, or unspecified (0.0.0.0, ::): connecting to either reaches this host. */
export function isLocalAddress(canonical: string): boolean {
  return canonical === '::' || canonical === '0.0.0.0' || isLoopback(canonical);
}
