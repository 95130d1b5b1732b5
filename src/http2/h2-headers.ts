// Header rewriting between HTTP/2 downstream streams and HTTP/2 upstream streams: the same
// hop-by-hop removal, x-forwarded-for, Via, traceparent and x-request-id as HTTP/1
// (request-headers.ts provides the parts), with :authority in place of Host.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { downstreamResponseHeaders, isHopByHop, nextTraceparent } from '../telemetry/request-headers.js';
import { uuidV4 } from '../telemetry/ids.js';

/**
 * Upstream request headers in one pass (no `delete`: an object that lost a key turns slow in
 * V8, and nghttp2's header mapping walks it for every call).
 */
export function h2UpstreamHeaders(headers: IncomingHttpHeaders, authority: string, path: string, remoteAddress: string | undefined, via: string, caller?: string): { headers: OutgoingHttpHeaders; requestId: string } {
  const out: OutgoingHttpHeaders = { ':method': headers[':method'], ':scheme': 'http', ':authority': authority, ':path': path };
  const listed =
    headers.connection === undefined
      ? null
      : new Set(
          String(headers.connection)
            .toLowerCase()
            .split(/\s*,\s*/),
        );
  for (const name in headers) {
    // x-dreammesh-*: the sidecar's own fields; a client cannot claim a caller (as serialize.ts).
    if (name.charCodeAt(0) === 58 /* ":" */ || SKIP.has(name) || isHopByHop(name, listed) || name.startsWith(OWN_PREFIX)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  // TE: trailers is the one TE value that may be forwarded (gRPC requires it).
  const te = headers.te;
  if (typeof te === 'string' && /(^|,)\s*trailers\s*(,|$)/i.test(te)) out.te = 'trailers';
  const client = remoteAddress ?? 'unknown';
  const xff = headers['x-forwarded-for'];
  out['x-forwarded-for'] = xff !== undefined ? `${String(xff)}, ${client}` : client;
  const hop = `2 ${via}`;
  out.via = headers.via !== undefined ? `${String(headers.via)}, ${hop}` : hop;
  out.traceparent = nextTraceparent(headers.traceparent);
  const given = headers['x-request-id'];
  const requestId = typeof given === 'string' && given.length > 0 && given.length <= 200 ? given : uuidV4();
  out['x-request-id'] = requestId;
  if (caller !== undefined) out[CALLER] = caller;
  return { headers: out, requestId };
}

const OWN_PREFIX = 'x-dreammesh-';
const CALLER = 'x-dreammesh-caller';
/** An upstream's own refusal is passed on renamed: x-dreammesh-error means "this sidecar refused". */
const UPSTREAM_ERROR = 'x-dreammesh-error';
const UPSTREAM_ERROR_RENAMED = 'x-dreammesh-upstream-error';

/** Replaced below, or meaningless on an HTTP/2 hop. */
const SKIP = new Set(['host', 'http2-settings', 'te', 'x-forwarded-for', 'via', 'traceparent', 'x-request-id']);

export function h2ResponseHeaders(headers: IncomingHttpHeaders, via: string): OutgoingHttpHeaders {
  const out = downstreamResponseHeaders(headers, via);
  const v = out.via as string;
  // downstreamResponseHeaders speaks HTTP/1.1; this hop is HTTP/2.
  out.via = v.slice(0, v.length - via.length - 4) + `2 ${via}`;
  renameUpstreamError(out);
  return out;
}

/** Trailers pass through minus connection-specific fields. */
export function h2Trailers(trailers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in trailers) {
    if (name === 'connection' || name === 'transfer-encoding' || name === 'keep-alive') continue;
    const v = trailers[name];
    if (v !== undefined) out[name] = v;
  }
  renameUpstreamError(out);
  return out;
}

function renameUpstreamError(out: OutgoingHttpHeaders): void {
  const e = out[UPSTREAM_ERROR];
  if (e === undefined) return;
  out[UPSTREAM_ERROR_RENAMED] = e;
  // A rare path (an upstream refused): the delete's slower object shape costs nothing here.
  delete out[UPSTREAM_ERROR];
}
