// The reference for the HTTP/1 codec's differential tests: Node's own llhttp, strict mode.
//
// We drive the parser node:http uses (HTTPParser from the built-in `_http_common`, the same
// object node:http's server and client initialize) directly, with no lenient flags, so the
// verdicts are exactly llhttp's. `_http_common` is reached with createRequire: it is a
// built-in module with no runtime deprecation warning (unlike process.binding('http_parser')).
//
// The input is given to one execute() call, as node:http does with each socket read. The result
// has the shape of the codec's ScanResult, plus the offset where each message ended (found by
// re-parsing prefixes) and where the error was found.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface ParserError extends Error {
  code: string;
  reason: string;
  bytesParsed: number;
}
interface NodeHTTPParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(b: Buffer): number | ParserError;
  finish(): undefined | ParserError;
  close(): void;
  [k: number]: unknown;
}
interface HTTPParserCtor {
  new (): NodeHTTPParser;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}
const common = require('_http_common') as { HTTPParser: HTTPParserCtor; methods: string[] };
const { HTTPParser } = common;

export type Header = readonly [string, string];

export interface OracleMessage {
  readonly method?: string;
  readonly target?: string;
  readonly status?: number;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly headers: readonly Header[];
  readonly body: Buffer;
  readonly trailers: readonly Header[];
  /** llhttp stopped after this message: CONNECT, Upgrade + Connection: upgrade, a 101, a 2xx to CONNECT. */
  readonly upgrade: boolean;
  readonly keepAlive: boolean;
  /** Offset just after the message's last byte. */
  readonly end: number;
}

export interface OracleResult {
  /** Complete messages, in order. */
  readonly messages: OracleMessage[];
  /** A message whose head llhttp finished but whose body did not (error or end of input). */
  readonly partial: Omit<OracleMessage, 'end' | 'body' | 'trailers'> | null;
  /** The first error (llhttp's HPE_* code), with the offset of the byte that caused it. */
  readonly error: { readonly code: string; readonly reason: string; readonly offset: number } | null;
  /** Bytes after the last complete message that form no complete message (0 if none). After an
   * upgrade, the bytes after the upgrading message (they belong to the other protocol). */
  readonly rest: number;
}

export interface OracleOptions {
  /** llhttp's (Node's) header size limit; large by default so limits never decide. */
  readonly maxHeaderSize?: number;
}

const DEFAULT_MAX_HEADER_SIZE = 1 << 24;

function pairs(flat: string[] | undefined): Header[] {
  const out: Header[] = [];
  if (!flat) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

interface Pass {
  messages: Omit<OracleMessage, 'end'>[];
  partial: Omit<OracleMessage, 'end' | 'body' | 'trailers'> | null;
  error: OracleResult['error'];
  /** Bytes consumed when llhttp stopped for an upgrade (the upgrading message ends there). */
  upgradedAt: number | null;
  /** The last message was completed by the end of input (a close-delimited response). */
  completedAtEof: boolean;
}

let shared: NodeHTTPParser | undefined;

/**
 * llhttp reports a method as its enum number, which is not an index into the method list
 * `_http_common` exports (node:http maps it with an internal table). We learn the numbering
 * once, by parsing one request per method name.
 */
const METHOD_BY_NUMBER: ReadonlyMap<number, string> = (() => {
  const map = new Map<number, string>();
  const p = new HTTPParser();
  for (const name of common.methods) {
    for (const target of ['/', 'a:1']) {
      let n: number | undefined;
      p.initialize(HTTPParser.REQUEST, {}, 1 << 16, HTTPParser.kLenientNone);
      p[HTTPParser.kOnMessageBegin] = () => {};
      p[HTTPParser.kOnHeaders] = () => {};
      p[HTTPParser.kOnBody] = () => {};
      p[HTTPParser.kOnMessageComplete] = () => {};
      p[HTTPParser.kOnHeadersComplete] = (_a: number, _b: number, _h: unknown, m: number) => {
        n = m;
        return 0;
      };
      p.execute(Buffer.from(`${name} ${target} HTTP/1.1\r\nHost: a\r\n\r\n`));
      if (n !== undefined) {
        map.set(n, name);
        break;
      }
    }
  }
  return map;
})();

/** One execute() over the whole input, as node:http does it. */
function pass(type: 'request' | 'response', bytes: Buffer, methods: readonly string[], maxHeaderSize: number, atEof: boolean): Pass {
  // One parser object, initialized afresh for each pass (node:http reuses its parsers the same way).
  const parser = (shared ??= new HTTPParser());
  parser.initialize(type === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, maxHeaderSize, HTTPParser.kLenientNone);
  type Head = NonNullable<Pass['partial']>;
  const out: Pass = { messages: [], partial: null, error: null, upgradedAt: null, completedAtEof: false };
  let inHead = false;
  let headers: string[] = [];
  let url = '';
  let trailers: string[] = [];
  let body: Buffer[] = [];
  let finals = 0;
  let upgraded = false;

  parser[HTTPParser.kOnMessageBegin] = () => {
    inHead = true;
    headers = [];
    url = '';
    trailers = [];
    body = [];
    out.partial = null;
  };
  // Node flushes header pairs to JS 32 at a time; before the head is complete they are headers,
  // after it they are trailers. The url arrives with the first flush (or in onHeadersComplete).
  parser[HTTPParser.kOnHeaders] = (flat: string[], u: string) => {
    if (inHead) {
      headers.push(...flat);
      url += u;
    } else trailers.push(...flat);
  };
  parser[HTTPParser.kOnHeadersComplete] = (
    versionMajor: number,
    versionMinor: number,
    flat: string[] | undefined,
    method: number | undefined,
    u: string | undefined,
    statusCode: number | undefined,
    _statusMessage: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    inHead = false;
    if (flat) headers.push(...flat);
    if (u !== undefined) url += u;
    const m: { -readonly [K in keyof Head]: Head[K] } = { versionMajor, versionMinor, headers: pairs(headers), upgrade, keepAlive };
    if (type === 'request') {
      m.method = METHOD_BY_NUMBER.get(method!) ?? `#${method}`;
      m.target = url;
    } else m.status = statusCode!;
    out.partial = m;
    if (type === 'response') {
      // llhttp stops after any 101, with or without an Upgrade header (its own flag may be unset).
      if (statusCode === 101) m.upgrade = true;
      // Interim (1xx other than 101) responses answer no request; the others answer methods[i] in turn.
      const answers = methods[finals];
      if (statusCode! >= 200 || statusCode === 101) finals++;
      // A 2xx to CONNECT opens a tunnel; a response to HEAD has no body: node:http's client gives
      // llhttp the same answers (2 = no body, then upgrade; 1 = no body).
      if (answers === 'CONNECT' && statusCode! >= 200 && statusCode! < 300) {
        m.upgrade = true;
        return 2;
      }
      if (answers === 'HEAD' && !m.upgrade) return 1;
    }
    return 0; // llhttp decides the framing itself (upgrades included)
  };
  parser[HTTPParser.kOnBody] = (b: Buffer) => {
    body.push(Buffer.from(b));
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    const h = out.partial!;
    out.messages.push({ ...h, body: Buffer.concat(body), trailers: pairs(trailers) });
    if (h.upgrade) upgraded = true;
    out.partial = null;
  };
  {
    const r = parser.execute(bytes);
    if (typeof r !== 'number') out.error = { code: r.code, reason: r.reason, offset: r.bytesParsed };
    else if (upgraded)
      out.upgradedAt = r; // the bytes after the message belong to another protocol
    else if (r < bytes.length) {
      // llhttp stopped inside a message whose head asked for an upgrade (a body with an
      // Upgrade): Node's binding hides llhttp's error whenever the upgrade flag is set and
      // returns where parsing stopped. llhttp itself refused these bytes: so do we.
      out.error = { code: 'HPE_ERROR_IN_UPGRADE_BODY', reason: 'llhttp stopped inside a message that asked for an upgrade (error hidden by Node)', offset: r };
    } else if (atEof) {
      const n = out.messages.length;
      const f = parser.finish();
      // An incomplete message at end of input is a tail, not an error: the codec reports it as rest.
      if (f && f.code !== 'HPE_INVALID_EOF_STATE') out.error = { code: f.code, reason: f.reason, offset: bytes.length };
      out.completedAtEof = out.messages.length > n;
    }
  }
  return out;
}

function run(type: 'request' | 'response', bytes: Buffer, methods: readonly string[], opts: OracleOptions): OracleResult {
  const max = opts.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  const whole = pass(type, bytes, methods, max, true);
  // llhttp does not say where each message ended. A message has ended within the first L bytes
  // exactly when a parse of those L bytes completes it, which is monotone in L: binary search.
  const ends: number[] = [];
  const n = whole.messages.length;
  let lo = 0;
  for (let i = 0; i < n; i++) {
    if (i === n - 1 && whole.upgradedAt !== null) {
      ends.push(whole.upgradedAt);
      break;
    }
    if (i === n - 1 && whole.completedAtEof) {
      ends.push(bytes.length);
      break;
    }
    let a = lo + 1,
      b = bytes.length; // the smallest L in [a, b] with more than i messages
    while (a < b) {
      const mid = (a + b) >> 1;
      if (pass(type, bytes.subarray(0, mid), methods, max, false).messages.length > i) b = mid;
      else a = mid + 1;
    }
    ends.push(a);
    lo = a;
  }
  const messages = whole.messages.map((m, i) => ({ ...m, end: ends[i]! }));
  const last = n ? ends[n - 1]! : 0;
  return { messages, partial: whole.partial, error: whole.error, rest: whole.error ? 0 : bytes.length - last };
}

/** llhttp's view of a stream of pipelined requests. */
export function llhttpScanRequests(bytes: Buffer, opts: OracleOptions = {}): OracleResult {
  return run('request', bytes, [], opts);
}

/** llhttp's view of a stream of responses; methods[i] is the method of the i-th request (HEAD: no body). */
export function llhttpScanResponses(bytes: Buffer, methods: readonly string[], opts: OracleOptions = {}): OracleResult {
  return run('response', bytes, methods, opts);
}

/** Bytes as a JS string literal body, for failure messages a person can paste back. */
export function escapeBytes(b: Buffer): string {
  let s = '';
  for (const c of b) {
    if (c === 0x0d) s += '\\r';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x09) s += '\\t';
    else if (c === 0x5c) s += '\\\\';
    else if (c === 0x27) s += "\\'";
    else if (c < 0x20 || c >= 0x7f) s += '\\x' + c.toString(16).padStart(2, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}
