// Header handling on the forwarding path: hop-by-hop removal (RFC 9110 §7.6.1), proxy-only
// headers, x-forwarded-for, via, W3C traceparent and x-request-id.
import { randomBytes } from 'node:crypto';
import { randomHex, uuidV4 } from './ids.js';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * The pseudonym a sidecar writes into Via: unique per process, so a request that comes back
 * to the same sidecar is a loop while a chain through several sidecars is not.
 */
export function newViaPseudonym(): string {
  return `dreammesh-${randomBytes(4).toString('hex')}`;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Names listed in Connection are hop-by-hop too. */
function connectionListed(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const s = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const n = part.trim().toLowerCase();
    if (n) s.add(n);
  }
  return s;
}

export function isHopByHop(name: string, listed: Set<string> | null): boolean {
  return HOP_BY_HOP.has(name) || (listed !== null && listed.has(name));
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Continues a valid traceparent with a new span id, or starts a new sampled trace. */
export function nextTraceparent(incoming: string | string[] | undefined): string {
  const m = typeof incoming === 'string' ? TRACEPARENT.exec(incoming.trim()) : null;
  const span = randomHex(8);
  if (m && m[1] !== '0'.repeat(32)) return `00-${m[1]}-${span}-${m[3]}`;
  return `00-${randomHex(16)}-${span}-01`;
}

export interface ForwardHeaderInput {
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  readonly httpVersion: string;
  /** Host to send upstream (the service name as the app wrote it). */
  readonly host: string;
  readonly via: string;
}

/** Builds upstream request headers from downstream ones. Returns the request id used. */
export function upstreamRequestHeaders(input: ForwardHeaderInput): { headers: Record<string, string | string[]>; requestId: string } {
  const src = input.headers;
  const listed = connectionListed(src.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in src) {
    if (isHopByHop(name, listed) || name === 'host') continue;
    const v = src[name];
    if (v !== undefined) out[name] = v;
  }
  out.host = input.host;
  // TE: trailers is the one TE value that may be forwarded.
  if (typeof src.te === 'string' && /(^|,)\s*trailers\s*(,|$)/i.test(src.te)) out.te = 'trailers';
  const client = input.remoteAddress ?? 'unknown';
  const xff = src['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${client}` : client;
  const via = `${input.httpVersion} ${input.via}`;
  out.via = src.via ? `${Array.isArray(src.via) ? src.via.join(', ') : src.via}, ${via}` : via;
  out.traceparent = nextTraceparent(src.traceparent);
  const rid = typeof src['x-request-id'] === 'string' && src['x-request-id'].length > 0 && src['x-request-id'].length <= 200 ? src['x-request-id'] : uuidV4();
  out['x-request-id'] = rid;
  return { headers: out, requestId: rid };
}

/** Response headers from upstream, minus hop-by-hop ones, plus Via. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders, viaPseudonym: string): OutgoingHttpHeaders {
  const listed = connectionListed(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (isHopByHop(name, listed)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  const via = `1.1 ${viaPseudonym}`;
  out.via = headers.via ? `${Array.isArray(headers.via) ? headers.via.join(', ') : headers.via}, ${via}` : via;
  return out;
}

/** True when the Via header shows this request already passed through this very sidecar. */
export function viaShowsLoop(via: string | string[] | undefined, pseudonym: string): boolean {
  if (via === undefined) return false;
  const all = Array.isArray(via) ? via.join(',') : via;
  return all.split(',').some((hop) => hop.trim().split(/\s+/)[1] === pseudonym);
}
