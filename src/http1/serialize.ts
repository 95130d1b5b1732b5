// Heads written by the engine: the upstream request head (rewritten once: hop-by-hop fields
// and x-dreammesh-* removed, Via, X-Forwarded-For, traceparent and request id added) and the
// downstream response head. Framing fields (Content-Length, Transfer-Encoding) are always kept as they
// came, even when Connection lists them: the body is forwarded with its framing unchanged, and
// dropping them would let the two sides disagree about where the message ends.
import { STATUS_CODES } from 'node:http';
import type { MessageHead, RequestHead, ResponseHead } from './head.js';
import { nextTraceparent } from '../telemetry/request-headers.js';
import { uuidV4 } from '../telemetry/ids.js';

/** Removed on every hop (RFC 9110 §7.6.1), plus the fields this engine writes itself. */
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'upgrade',
  'host',
  'via',
  'x-forwarded-for',
  'traceparent',
  'x-request-id',
  'http2-settings',
]);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'upgrade', 'via']);
const FRAMING = new Set(['content-length', 'transfer-encoding']);
/**
 * Identity headers are the sidecar's own: a downstream's x-dreammesh-* request fields never
 * reach an upstream (a client cannot claim a caller), and an upstream's x-dreammesh-error is
 * passed on renamed, so that x-dreammesh-error always means "this sidecar refused".
 */
const OWN_PREFIX = 'x-dreammesh-';
const UPSTREAM_ERROR = 'x-dreammesh-error';
const UPSTREAM_ERROR_RENAMED = 'x-dreammesh-upstream-error';

export interface UpstreamHeadInput {
  readonly head: RequestHead;
  readonly path: string;
  /** Host sent upstream (the authority as the client wrote it). */
  readonly host: string;
  readonly remoteAddress: string | undefined;
  readonly via: string;
  /** Forward the Upgrade (WebSocket and the like); false strips it (h2c, or none asked). */
  readonly upgrade: boolean;
  /** Extra header lines, each ending in CRLF (e.g. the caller identity). */
  readonly extra: string;
}

function dropped(name: string, head: MessageHead, always: Set<string>): boolean {
  if (always.has(name)) return true;
  const listed = head.connectionTokens;
  return listed !== null && listed.includes(name) && !FRAMING.has(name);
}

/** Returns the head and the request id it carries. */
export function upstreamRequestHead(input: UpstreamHeadInput): { text: string; requestId: string } {
  const h = input.head;
  let s = `${h.method} ${input.path} HTTP/1.${h.versionMinor}\r\nhost: ${input.host}\r\n`;
  let xff: string | null = null;
  let via: string | null = null;
  let traceparent: string | undefined;
  let requestId: string | undefined;
  let te = false;
  for (let k = 0; k < h.names.length; k++) {
    const name = h.lower[k]!;
    const value = h.values[k]!;
    if (name.startsWith(OWN_PREFIX)) continue;
    if (dropped(name, h, DROP_REQUEST)) {
      if (name === 'x-forwarded-for') xff = xff === null ? value : `${xff}, ${value}`;
      else if (name === 'via') via = via === null ? value : `${via}, ${value}`;
      else if (name === 'traceparent') traceparent = value;
      else if (name === 'x-request-id' && value.length > 0 && value.length <= 200) requestId = value;
      else if (name === 'te' && /(^|,)\s*trailers\s*(,|$)/i.test(value)) te = true;
      continue;
    }
    s += `${h.names[k]}: ${value}\r\n`;
  }
  if (te) s += 'te: trailers\r\n';
  if (input.upgrade && h.upgrade !== null) s += `connection: upgrade\r\nupgrade: ${h.upgrade}\r\n`;
  const client = input.remoteAddress ?? 'unknown';
  requestId ??= uuidV4();
  s += `x-forwarded-for: ${xff === null ? client : `${xff}, ${client}`}\r\n`;
  const hop = `1.${h.versionMinor} ${input.via}`;
  s += `via: ${via === null ? hop : `${via}, ${hop}`}\r\n`;
  s += `traceparent: ${nextTraceparent(traceparent)}\r\nx-request-id: ${requestId}\r\n${input.extra}\r\n`;
  return { text: s, requestId };
}

/**
 * The response head for the downstream. `close` adds Connection: close (this is the last
 * response on the connection); `keepAlive10` tells an HTTP/1.0 client that asked for
 * keep-alive that it got it; `dechunked` drops Transfer-Encoding (the engine decodes the body
 * for an HTTP/1.0 client); a 101 keeps its Upgrade.
 */
export function downstreamResponseHead(h: ResponseHead, via: string, close: boolean, keepAlive10 = false, dechunked = false): string {
  let s = `HTTP/1.1 ${h.status} ${h.reason}\r\n`;
  let upstreamVia: string | null = null;
  for (let k = 0; k < h.names.length; k++) {
    const name = h.lower[k]!;
    if (dechunked && (name === 'transfer-encoding' || name === 'trailer')) continue;
    if (dropped(name, h, DROP_RESPONSE)) {
      if (name === 'via') upstreamVia = upstreamVia === null ? h.values[k]! : `${upstreamVia}, ${h.values[k]!}`;
      continue;
    }
    s += `${name === UPSTREAM_ERROR ? UPSTREAM_ERROR_RENAMED : h.names[k]}: ${h.values[k]}\r\n`;
  }
  const hop = `1.${h.versionMinor} ${via}`;
  s += `via: ${upstreamVia === null ? hop : `${upstreamVia}, ${hop}`}\r\n`;
  if (h.status === 101 && h.upgrade !== null) s += `connection: upgrade\r\nupgrade: ${h.upgrade}\r\n`;
  else if (close) s += 'connection: close\r\n';
  else if (keepAlive10) s += 'connection: keep-alive\r\n';
  return s + '\r\n';
}

/** A complete response written by the sidecar itself (errors). */
export function localResponse(status: number, headers: Record<string, string | number>, body: string, close: boolean): string {
  let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  for (const k in headers) s += `${k}: ${headers[k]}\r\n`;
  s += `content-length: ${Buffer.byteLength(body)}\r\n`;
  if (close) s += 'connection: close\r\n';
  return `${s}\r\n${body}`;
}
