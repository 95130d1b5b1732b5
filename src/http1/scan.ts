// Whole-buffer scanning of HTTP/1 message streams: every message, its headers, decoded body
// and trailers, or the first error. The engine works incrementally on sockets with the same
// head parser and chunked decoder; this is the form tests (differential checks against other
// parsers) and tools use.
import { ChunkedDecoder } from './chunked.js';
import { Body, requestBody, requestKeepsAlive, responseBody, responseKeepsAlive, wantsUpgrade } from './framing.js';
import { DEFAULT_LIMITS, parseRequestHead, parseResponseHead, skipLeadingCrlf, type HeadLimits, type MessageHead } from './head.js';
import { ParseError } from './parse-error.js';

export type { HeadLimits } from './head.js';

export interface ScannedMessage {
  readonly method?: string;
  readonly target?: string;
  readonly status?: number;
  readonly versionMinor: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  readonly trailers: readonly (readonly [string, string])[];
  /** CONNECT, or Upgrade with Connection: upgrade: the bytes after it are another protocol. */
  readonly upgrade: boolean;
}

export interface ScanResult {
  readonly messages: ScannedMessage[];
  readonly error: { readonly code: string; readonly reason: string } | null;
  /** Bytes after the last complete message (an incomplete tail, or bytes after an upgrade). */
  readonly rest: number;
}

const pairs = (h: MessageHead): [string, string][] => h.names.map((n, k) => [n, h.values[k]!]);

export function scanRequests(bytes: Buffer, limits: Partial<HeadLimits> = {}): ScanResult {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const messages: ScannedMessage[] = [];
  let i = 0;
  try {
    while (i < bytes.length) {
      const s = skipLeadingCrlf(bytes, i, bytes.length);
      if (s === bytes.length) return { messages, error: null, rest: bytes.length - i };
      const head = parseRequestHead(bytes, s, bytes.length, l);
      if (head === null) break;
      const r = readBody(bytes, s + head.headBytes, requestBody(head), head.contentLength, l);
      if (r === null) break;
      const upgrade = head.method === 'CONNECT' || wantsUpgrade(head);
      messages.push({ method: head.method, target: head.target, versionMinor: head.versionMinor, headers: pairs(head), body: r.body, trailers: r.trailers, upgrade });
      i = r.end;
      if (upgrade) break;
      if (!requestKeepsAlive(head) && skipLeadingCrlf(bytes, i, bytes.length) < bytes.length) throw new ParseError('DATA_AFTER_MESSAGE', 'bytes after a request that closes the connection');
    }
  } catch (e) {
    if (e instanceof ParseError) return { messages, error: { code: e.code, reason: e.reason }, rest: bytes.length - i };
    throw e;
  }
  return { messages, error: null, rest: bytes.length - i };
}

export function scanResponses(bytes: Buffer, methods: readonly string[], limits: Partial<HeadLimits> = {}): ScanResult {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const messages: ScannedMessage[] = [];
  let i = 0;
  let answered = 0;
  try {
    while (i < bytes.length) {
      const s = skipLeadingCrlf(bytes, i, bytes.length);
      if (s === bytes.length) break; // empty lines only: the start of a message yet to come
      const head = parseResponseHead(bytes, s, bytes.length, l);
      if (head === null) break; // the tail, empty lines included, is a message yet to come
      i = s;
      const method = methods[answered] ?? 'GET';
      const kind = responseBody(head, method);
      const r = kind === Body.UntilClose ? { body: bytes.subarray(i + head.headBytes), trailers: [], end: bytes.length } : readBody(bytes, i + head.headBytes, kind, head.contentLength, l);
      if (r === null) break;
      const upgrade = head.status === 101 || (method === 'CONNECT' && head.status >= 200 && head.status < 300);
      messages.push({ status: head.status, versionMinor: head.versionMinor, headers: pairs(head), body: r.body, trailers: r.trailers, upgrade });
      i = r.end;
      if (upgrade) break;
      if (head.status >= 200) answered += 1;
      if (!responseKeepsAlive(head) && skipLeadingCrlf(bytes, i, bytes.length) < bytes.length) throw new ParseError('DATA_AFTER_MESSAGE', 'bytes after a response that closes the connection');
    }
  } catch (e) {
    if (e instanceof ParseError) return { messages, error: { code: e.code, reason: e.reason }, rest: bytes.length - i };
    throw e;
  }
  return { messages, error: null, rest: bytes.length - i };
}

function readBody(bytes: Buffer, start: number, kind: Body, length: number, limits: HeadLimits): { body: Buffer; trailers: [string, string][]; end: number } | null {
  if (kind === Body.None) return { body: Buffer.alloc(0), trailers: [], end: start };
  if (kind === Body.Length) {
    if (bytes.length - start < length) return null;
    return { body: bytes.subarray(start, start + length), trailers: [], end: start + length };
  }
  const parts: Buffer[] = [];
  const d = new ChunkedDecoder(limits, (b, s, e) => parts.push(b.subarray(s, e)));
  const end = d.feed(bytes, start, bytes.length);
  if (!d.done) return null;
  return { body: Buffer.concat(parts), trailers: d.trailers === null ? [] : pairs(d.trailers), end };
}
