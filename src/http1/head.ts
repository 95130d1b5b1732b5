// Request and response heads (start line + header section), parsed strictly from bytes:
// CRLF only, no obs-fold, token names with no space before the colon, no CTLs in values,
// a single well-formed Content-Length, Transfer-Encoding only with a final `chunked`
// (requests), never both. Parsing returns null while the head is incomplete and throws
// ParseError as soon as a byte breaks a rule, so a bad head is refused before it is whole.
import { METHODS } from 'node:http';
import { AUTHORITY, COLON, CR, FIELD_VALUE, HTAB, LF, REASON, SP, TARGET, TOKEN } from './chars.js';
import { ParseError } from './parse-error.js';

export interface HeadLimits {
  /** Whole head: start line, header lines and the final CRLF. */
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  readonly maxUriBytes: number;
}

export const DEFAULT_LIMITS: HeadLimits = Object.freeze({ maxHeaderBytes: 16384, maxHeaderCount: 100, maxUriBytes: 8192 });

export interface MessageHead {
  readonly versionMinor: number;
  /** Header names as received, lower-cased names, and values without surrounding OWS. */
  readonly names: string[];
  readonly lower: string[];
  readonly values: string[];
  /** Bytes of the head, from the start line through the empty line. */
  headBytes: number;
  /** -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding present (its codings joined), or null. */
  transferEncoding: string | null;
  /** Transfer-Encoding's last coding is chunked. */
  chunked: boolean;
  /** Lower-cased tokens of Connection. */
  connectionTokens: string[] | null;
  /** Upgrade header value, or null. */
  upgrade: string | null;
}

export interface RequestHead extends MessageHead {
  readonly method: string;
  readonly target: string;
  host: string | null;
  expectContinue: boolean;
}

export interface ResponseHead extends MessageHead {
  readonly status: number;
  readonly reason: string;
}

const KNOWN_METHODS = new Set(METHODS);

/** Skips empty lines (CRLF) that may precede a request line (RFC 9112 §2.2). */
export function skipLeadingCrlf(buf: Buffer, start: number, end: number): number {
  let i = start;
  while (i + 1 < end && buf[i] === CR && buf[i + 1] === LF) i += 2;
  return i;
}

/**
 * Parses a request head in buf[start, end). Returns null if incomplete; throws ParseError.
 * The caller skips leading CRLFs first (skipLeadingCrlf).
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, limits: HeadLimits): RequestHead | null {
  let i = start;
  // method
  while (i < end && TOKEN[buf[i]!] === 1) i++;
  if (i === end) return incomplete(start, end, limits);
  if (buf[i] !== SP || i === start) throw new ParseError('INVALID_METHOD', 'the request line must start with a method and a single space');
  const method = buf.toString('latin1', start, i);
  if (!KNOWN_METHODS.has(method)) throw new ParseError('INVALID_METHOD', `unknown method "${method.slice(0, 20)}"`);
  const t0 = ++i;
  while (i < end && TARGET[buf[i]!] === 1) i++;
  if (i - t0 > limits.maxUriBytes) throw new ParseError('URI_TOO_LONG', `the request target exceeds ${limits.maxUriBytes} bytes`);
  if (i === end) return incomplete(start, end, limits);
  if (buf[i] !== SP || i === t0) throw new ParseError('INVALID_TARGET', 'the request target must be visible ASCII followed by a single space');
  const target = buf.toString('latin1', t0, i);
  checkTargetForm(method, target);
  i++;
  if (end - i < 10) {
    checkPrefix(buf, i, end, VERSION_PREFIX);
    return incomplete(start, end, limits);
  }
  const minor = versionAt(buf, i);
  if (minor < 0) throw new ParseError('INVALID_VERSION', 'only HTTP/1.0 and HTTP/1.1 are accepted');
  i += 8;
  if (buf[i] !== CR) throw new ParseError('INVALID_VERSION', 'the request line must end with CRLF after the version');
  if (buf[i + 1] !== LF) throw new ParseError('LF_EXPECTED', 'CR not followed by LF');
  const head: RequestHead = {
    method,
    target,
    versionMinor: minor,
    names: [],
    lower: [],
    values: [],
    headBytes: 0,
    contentLength: -1,
    transferEncoding: null,
    chunked: false,
    connectionTokens: null,
    upgrade: null,
    host: null,
    expectContinue: false,
  };
  let hosts = 0;
  const done = parseFields(buf, i + 2, end, start, limits, head, (name, value) => {
    if (name === 'host') {
      hosts += 1;
      if (hosts > 1) throw new ParseError('DUPLICATE_HOST', 'more than one Host header');
      head.host = value;
    } else if (name === 'expect') head.expectContinue = value.toLowerCase() === '100-continue';
  });
  if (done < 0) return incomplete(start, end, limits);
  head.headBytes = done - start;
  if (head.transferEncoding !== null && !head.chunked) {
    throw new ParseError('INVALID_TRANSFER_ENCODING', 'a request Transfer-Encoding must end with chunked');
  }
  if (minor === 1 && hosts === 0) throw new ParseError('MISSING_HOST', 'an HTTP/1.1 request needs a Host header');
  return head;
}

/** Parses a response head in buf[start, end). Returns null if incomplete; throws ParseError. */
export function parseResponseHead(buf: Buffer, start: number, end: number, limits: HeadLimits): ResponseHead | null {
  if (end - start < 13) {
    checkPrefix(buf, start, end, VERSION_PREFIX);
    return incomplete(start, end, limits);
  }
  const minor = versionAt(buf, start);
  if (minor < 0) throw new ParseError('INVALID_VERSION', 'the status line must start with HTTP/1.0 or HTTP/1.1');
  let i = start + 8;
  const d0 = buf[i + 1]! - 0x30;
  const d1 = buf[i + 2]! - 0x30;
  const d2 = buf[i + 3]! - 0x30;
  if (buf[i] !== SP || !(d0 >= 1 && d0 <= 9) || !(d1 >= 0 && d1 <= 9) || !(d2 >= 0 && d2 <= 9)) {
    throw new ParseError('INVALID_STATUS', 'the status line needs a three-digit status code');
  }
  const status = d0 * 100 + d1 * 10 + d2;
  i += 4;
  let reason = '';
  if (buf[i] === SP) {
    const r0 = ++i;
    while (i < end && REASON[buf[i]!] === 1) i++;
    if (i === end) return incomplete(start, end, limits);
    reason = buf.toString('latin1', r0, i);
  }
  if (i === end) return incomplete(start, end, limits);
  if (buf[i] !== CR) throw new ParseError(buf[i] === LF ? 'CR_EXPECTED' : 'INVALID_STATUS', 'the status line must end with CRLF');
  if (i + 1 === end) return incomplete(start, end, limits);
  if (buf[i + 1] !== LF) throw new ParseError('LF_EXPECTED', 'CR not followed by LF');
  const head: ResponseHead = {
    status,
    reason,
    versionMinor: minor,
    names: [],
    lower: [],
    values: [],
    headBytes: 0,
    contentLength: -1,
    transferEncoding: null,
    chunked: false,
    connectionTokens: null,
    upgrade: null,
  };
  const done = parseFields(buf, i + 2, end, start, limits, head, null);
  if (done < 0) return incomplete(start, end, limits);
  head.headBytes = done - start;
  // A 1xx ends at its head (a 101 hands the connection over); one that claims a body would
  // be framed differently by different parsers.
  if (status < 200 && status !== 101 && (head.contentLength !== -1 || head.transferEncoding !== null)) {
    throw new ParseError('INVALID_STATUS', `a ${status} response cannot carry Content-Length or Transfer-Encoding`);
  }
  return head;
}

const VERSION_PREFIX = Buffer.from('HTTP/1.');
/** Scheme letters only, as llhttp reads them (RFC 3986 would also allow digits, + - .). */
const ABSOLUTE = /^[A-Za-z]+:\/\//;

/** RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT only) or asterisk-form (OPTIONS only). */
function checkTargetForm(method: string, target: string): void {
  const c = target.charCodeAt(0);
  if (method === 'CONNECT') {
    if (c === 0x2f || target === '*') throw new ParseError('INVALID_TARGET', 'CONNECT needs an authority (host:port)');
    checkAuthority(target, 0, target.length);
    return;
  }
  if (c === 0x2f) return;
  if (target === '*') {
    if (method !== 'OPTIONS') throw new ParseError('INVALID_TARGET', 'the asterisk form is for OPTIONS only');
    return;
  }
  const scheme = ABSOLUTE.exec(target);
  if (scheme === null) throw new ParseError('INVALID_TARGET', 'the request target must be a path, an absolute URI, or * for OPTIONS');
  const a0 = scheme[0].length;
  let a1 = a0;
  while (a1 < target.length && target[a1] !== '/' && target[a1] !== '?' && target[a1] !== '#') a1++;
  checkAuthority(target, a0, a1);
}

/** Authority bytes: unreserved, sub-delims, ":", "@", "[", "]" and "%" (RFC 3986 §3.2). */
function checkAuthority(target: string, from: number, to: number): void {
  for (let k = from; k < to; k++) {
    if (AUTHORITY[target.charCodeAt(k)] !== 1) throw new ParseError('INVALID_TARGET', 'a character that cannot appear in a host or authority');
  }
}

function checkPrefix(buf: Buffer, i: number, end: number, prefix: Buffer): void {
  for (let k = 0; k < prefix.length && i + k < end; k++) {
    if (buf[i + k] !== prefix[k]) throw new ParseError('INVALID_VERSION', 'only HTTP/1.0 and HTTP/1.1 are accepted');
  }
  const m = i + prefix.length;
  if (m < end && buf[m] !== 0x30 && buf[m] !== 0x31) throw new ParseError('INVALID_VERSION', 'only HTTP/1.0 and HTTP/1.1 are accepted');
}

/** 0 or 1 for "HTTP/1.0" / "HTTP/1.1" at i, else -1. */
function versionAt(buf: Buffer, i: number): number {
  if (buf[i] !== 0x48 || buf[i + 1] !== 0x54 || buf[i + 2] !== 0x54 || buf[i + 3] !== 0x50 || buf[i + 4] !== 0x2f || buf[i + 5] !== 0x31 || buf[i + 6] !== 0x2e) return -1;
  const m = buf[i + 7];
  return m === 0x31 ? 1 : m === 0x30 ? 0 : -1;
}

function incomplete(start: number, end: number, limits: HeadLimits): null {
  if (end - start > limits.maxHeaderBytes) throw new ParseError('HEADERS_TOO_LARGE', `the head exceeds ${limits.maxHeaderBytes} bytes`);
  return null;
}

/**
 * Parses header lines from i up to and including the empty line; fills `head`. Returns the
 * offset after the final CRLF, or -1 if the section is incomplete. `onField` sees each
 * lower-cased name and value (request-only fields). Used for trailers too (see chunked.ts).
 */
export function parseFields(buf: Buffer, i: number, end: number, headStart: number, limits: HeadLimits, head: MessageHead, onField: ((name: string, value: string) => void) | null): number {
  for (;;) {
    if (i - headStart > limits.maxHeaderBytes) throw new ParseError('HEADERS_TOO_LARGE', `the head exceeds ${limits.maxHeaderBytes} bytes`);
    if (i >= end) return -1;
    const c = buf[i]!;
    if (c === CR) {
      if (i + 1 >= end) return -1;
      if (buf[i + 1] !== LF) throw new ParseError('LF_EXPECTED', 'CR not followed by LF');
      if (i + 2 - headStart > limits.maxHeaderBytes) throw new ParseError('HEADERS_TOO_LARGE', `the head exceeds ${limits.maxHeaderBytes} bytes`);
      return i + 2;
    }
    if (c === LF) throw new ParseError('CR_EXPECTED', 'bare LF in the header section');
    if (c === SP || c === HTAB) throw new ParseError('OBS_FOLD', 'a header line starts with whitespace (obs-fold)');
    const n0 = i;
    while (i < end && TOKEN[buf[i]!] === 1) i++;
    if (i >= end) return -1;
    if (buf[i] !== COLON || i === n0) throw new ParseError('INVALID_HEADER_NAME', 'a header name must be a token followed directly by ":"');
    const n1 = i++;
    while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    const v0 = i;
    while (i < end && FIELD_VALUE[buf[i]!] === 1) i++;
    if (i >= end) return -1;
    if (buf[i] === LF) throw new ParseError('CR_EXPECTED', 'bare LF in the header section');
    if (buf[i] !== CR) throw new ParseError('INVALID_HEADER_VALUE', 'a header value contains a control character');
    if (i + 1 >= end) return -1;
    if (buf[i + 1] !== LF) throw new ParseError('LF_EXPECTED', 'CR not followed by LF');
    let v1 = i;
    while (v1 > v0 && (buf[v1 - 1] === SP || buf[v1 - 1] === HTAB)) v1--;
    i += 2;
    if (head.names.length >= limits.maxHeaderCount) throw new ParseError('TOO_MANY_HEADERS', `more than ${limits.maxHeaderCount} header fields`);
    const name = buf.toString('latin1', n0, n1);
    const value = buf.toString('latin1', v0, v1);
    const lower = name.toLowerCase();
    // Framing fields end at their last visible byte or a space: a trailing HTAB is read
    // differently by different parsers (one of the classic desync tricks), so it is refused.
    if ((lower === 'content-length' || lower === 'transfer-encoding') && hasTab(buf, v1, i - 2)) {
      throw new ParseError(lower === 'content-length' ? 'INVALID_CONTENT_LENGTH' : 'INVALID_TRANSFER_ENCODING', `whitespace other than SP after ${name}`);
    }
    // Connection decides keep-alive and upgrades: a tab inside it (`upgrade\t`) is read as part of
    // the token by some parsers and as whitespace by others, so it is refused.
    if ((lower === 'connection' || lower === 'proxy-connection') && hasTab(buf, v0, i - 2)) {
      throw new ParseError('INVALID_HEADER_VALUE', `a tab in ${name}`);
    }
    head.names.push(name);
    head.lower.push(lower);
    head.values.push(value);
    fieldSemantics(head, lower, value);
    if (onField !== null) onField(lower, value);
  }
}

function hasTab(buf: Buffer, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (buf[k] === HTAB) return true;
  return false;
}

function fieldSemantics(head: MessageHead, lower: string, value: string): void {
  switch (lower) {
    case 'content-length':
      if (head.contentLength !== -1) throw new ParseError('DUPLICATE_CONTENT_LENGTH', 'more than one Content-Length');
      if (head.transferEncoding !== null) throw new ParseError('CONTENT_LENGTH_AND_TRANSFER_ENCODING', 'both Content-Length and Transfer-Encoding');
      head.contentLength = parseContentLength(value);
      return;
    case 'transfer-encoding':
      if (head.contentLength !== -1) throw new ParseError('CONTENT_LENGTH_AND_TRANSFER_ENCODING', 'both Content-Length and Transfer-Encoding');
      head.transferEncoding = head.transferEncoding === null ? value : `${head.transferEncoding}, ${value}`;
      head.chunked = codingsEndInChunked(head.transferEncoding);
      return;
    case 'connection':
    case 'proxy-connection': // read as Connection, as llhttp does, so both agree on keep-alive
      for (const t of value.split(',')) {
        const tok = trimOws(t).toLowerCase();
        if (tok.length > 0) (head.connectionTokens ??= []).push(tok);
      }
      return;
    case 'upgrade':
      head.upgrade = head.upgrade === null ? value : `${head.upgrade}, ${value}`;
      return;
  }
}

function parseContentLength(v: string): number {
  if (v.length === 0) throw new ParseError('INVALID_CONTENT_LENGTH', 'Content-Length is empty');
  let n = 0;
  for (let k = 0; k < v.length; k++) {
    const d = v.charCodeAt(k) - 0x30;
    if (d < 0 || d > 9) throw new ParseError('INVALID_CONTENT_LENGTH', 'Content-Length must be digits only');
    n = n * 10 + d;
    if (n > Number.MAX_SAFE_INTEGER) throw new ParseError('INVALID_CONTENT_LENGTH', 'Content-Length is too large');
  }
  return n;
}

/**
 * Checks the coding list (tokens separated by commas) and tells whether chunked is the final
 * coding. chunked anywhere but last, or twice, is an error: no parser may guess the length.
 */
function codingsEndInChunked(te: string): boolean {
  const codings = te.split(',');
  let chunkedAt = -1;
  for (let k = 0; k < codings.length; k++) {
    const c = trimOws(codings[k]!);
    if (c.length === 0 || !isToken(c)) throw new ParseError('INVALID_TRANSFER_ENCODING', 'Transfer-Encoding must be a list of codings');
    if (c.toLowerCase() === 'chunked') {
      if (chunkedAt !== -1) throw new ParseError('INVALID_TRANSFER_ENCODING', 'chunked applied more than once');
      chunkedAt = k;
    }
  }
  if (chunkedAt !== -1 && chunkedAt !== codings.length - 1) throw new ParseError('INVALID_TRANSFER_ENCODING', 'chunked must be the final transfer coding');
  return chunkedAt !== -1;
}

/** Strips SP and HTAB only: String.trim() would also strip NBSP and other Unicode spaces. */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === SP || s.charCodeAt(a) === HTAB)) a++;
  while (b > a && (s.charCodeAt(b - 1) === SP || s.charCodeAt(b - 1) === HTAB)) b--;
  return s.slice(a, b);
}

function isToken(s: string): boolean {
  for (let k = 0; k < s.length; k++) if (TOKEN[s.charCodeAt(k)] !== 1) return false;
  return true;
}

/** True when the Connection header lists this token (lower-case). */
export function hasConnectionToken(head: MessageHead, token: string): boolean {
  return head.connectionTokens !== null && head.connectionTokens.includes(token);
}

/** Index of the first header with this lower-cased name, or -1. */
export function headerIndex(head: MessageHead, lower: string): number {
  return head.lower.indexOf(lower);
}
