// Header rewriting between HTTP/2 downstream streams and HTTP/2 upstream streams: the same
// hop-by-hop removal, x-forwarded-for, Via, traceparent and x-request-id as HTTP/1 (one
// implementation, request-headers.ts), with :authority in place of Host.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../telemetry/request-headers.js';

export function h2UpstreamHeaders(headers: IncomingHttpHeaders, authority: string, path: string, remoteAddress: string | undefined, via: string): { headers: OutgoingHttpHeaders; requestId: string } {
  const r = upstreamRequestHeaders({ headers, remoteAddress, httpVersion: '2', host: authority, via });
  const out: OutgoingHttpHeaders = r.headers;
  delete out.host;
  delete out['http2-settings'];
  out[':authority'] = authority;
  out[':path'] = path;
  out[':scheme'] = 'http';
  return { headers: out, requestId: r.requestId };
}

export function h2ResponseHeaders(headers: IncomingHttpHeaders, via: string): OutgoingHttpHeaders {
  const out = downstreamResponseHeaders(headers, via);
  const v = out.via as string;
  // downstreamResponseHeaders speaks HTTP/1.1; this hop is HTTP/2.
  out.via = v.slice(0, v.length - via.length - 4) + `2 ${via}`;
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
  return out;
}
