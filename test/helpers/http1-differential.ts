// The differential rule between DreamMesh's HTTP/1 codec and Node's llhttp (strict):
//
//   - if llhttp rejects, the codec rejects, at the same message or earlier;
//   - if llhttp accepts, the codec accepts with the same message boundaries (same count, start
//     line, headers, body bytes, trailers, upgrade stop, and the same incomplete tail), or it
//     rejects a message llhttp accepted for a reason in STRICTER below;
//   - the messages both accept are identical.
//
// STRICTER is the whole list of places where DreamMesh is deliberately stricter than llhttp.
// Each entry names the codec rule it stands for and recognises, from llhttp's own reading of
// the message (and its raw bytes), that the message breaks that rule. Anything else is a
// difference to fix in the codec (or, rarely, a new entry argued for in review).
import { scanRequests, scanResponses, type ScanResult, type ScannedMessage } from '../../src/http1/scan.js';
import { escapeBytes, llhttpScanRequests, llhttpScanResponses, type OracleMessage, type OracleResult } from './llhttp-oracle.js';

export type Kind = 'request' | 'response';

/** Limits far above anything generated: limits are tested on their own, never here. */
export const NO_LIMITS = { maxHeaderBytes: 1 << 24, maxHeaderCount: 1 << 20, maxUriBytes: 1 << 24 };

type Head = Omit<OracleMessage, 'end' | 'body' | 'trailers'>;

interface Raw {
  readonly bytes: Buffer;
  /** Where the message starts (the end of the previous one). */
  readonly from: number;
  /** llhttp has the whole head (else it is judged from its complete lines, read naively). */
  readonly complete: boolean;
  /** The head frames a chunked body (chunk rules look at the bytes after the head only then). */
  readonly chunked: boolean;
}

interface StricterRule {
  readonly id: string;
  /** The codec rule this entry stands for: the brief's list of intended rules, or, marked
   * ADDED, a rule the codec gained for parity with llhttp or the RFC (argued in the comment). */
  readonly rule: string;
  /** Whether message `m` breaks the rule. With !raw.complete the head is still arriving: a
   * rule may only say yes when the lines seen so far already break it. */
  readonly applies: (kind: Kind, m: Head, raw: Raw) => boolean;
}

/** Leading and trailing OWS: SP and HTAB only (String.prototype.trim also strips NBSP, 0xA0). */
const OWS = /^[ \t]+|[ \t]+$/g;

const count = (m: Head, lower: string): number => m.headers.filter(([n]) => n.toLowerCase() === lower).length;
const has = (m: Head, lower: string): boolean => count(m, lower) > 0;

export const STRICTER: readonly StricterRule[] = [
  {
    // llhttp accepts HTTP/2.0 and HTTP/0.9 (a request line without a version) on HTTP/1.
    id: 'version',
    rule: 'versions HTTP/1.0 and HTTP/1.1 only',
    applies: (_k, m) => m.versionMajor !== 1 || m.versionMinor > 1,
  },
  {
    // llhttp does not look at Host at all (node:http checks it later, in JavaScript). RFC 9112
    // §3.2 also makes "more than one Host" a 400 in any request; the codec applies that to
    // HTTP/1.0 too.
    id: 'host',
    rule: 'HTTP/1.1 requests need exactly one Host header',
    applies: (k, m, { complete }) => k === 'request' && (count(m, 'host') > 1 || (complete && m.versionMajor === 1 && m.versionMinor === 1 && !has(m, 'host'))),
  },
  {
    // llhttp skips any run of CR and LF before a message, and ends an HTTP/0.9-style request
    // line (no version) at a bare LF; the codec takes CRLF only, everywhere in a head.
    id: 'line-endings',
    rule: 'CRLF line endings only (bare LF and bare CR rejected)',
    applies: (_k, _m, { bytes, from }) => {
      let i = from;
      while (i < bytes.length && (bytes[i] === 0x0d || bytes[i] === 0x0a)) i++;
      if (!/^(\r\n)*$/.test(bytes.toString('latin1', from, i))) return true;
      const s = bytes.toString('latin1', from);
      const end = s.indexOf('\r\n\r\n');
      return /(^|[^\r])\n|\r(?!\n|$)/.test(end < 0 ? s : s.slice(0, end + 4));
    },
  },
  {
    // llhttp ignores an empty Transfer-Encoding (and then honours a Content-Length after it),
    // and in a response reads a body whose codings do not end in chunked until the connection
    // closes, whatever the list holds (",chunked", "chunked, gzip", "chunked;q=1"). Trailers
    // are parsed like headers, so a Transfer-Encoding there is held to the same list rule.
    // Responses: the list rule applied to responses too (a 502, never a guess).
    id: 'transfer-encoding',
    rule: 'in requests, Transfer-Encoding must end with chunked; chunked may appear only once, last (headers and trailers)',
    applies: (k, m, raw) => teBroken(m) || teBroken({ ...m, headers: chunkLines(raw).trailers }) || (k === 'request' && raw.complete && has(m, 'transfer-encoding') && codings(m).at(-1) !== 'chunked'),
  },
  {
    // llhttp takes any Content-Length below 2^64; the codec's lengths are JS numbers.
    id: 'content-length-bound',
    rule: 'Content-Length: digits only (bounded: at most 2^53 - 1)',
    applies: (_k, m) => m.headers.some(([n, v]) => n.toLowerCase() === 'content-length' && /^\d+$/.test(v) && BigInt(v) > BigInt(Number.MAX_SAFE_INTEGER)),
  },
  {
    // llhttp takes any chunk size below 2^64 (and waits for that much data).
    id: 'chunk-size-bound',
    rule: 'chunk size lines: hex digits, bounded (the codec: at most 2^48 bytes per chunk)',
    applies: (_k, _m, raw) => chunkLines(raw).all.some((l) => BigInt('0x' + (/^[0-9A-Fa-f]*/.exec(l)![0] || '0')) > MAX_CHUNK_SIZE),
  },
  {
    // llhttp takes an empty extension name or value (";=b", ";a=", ";;"); RFC 9112 §7.1.1 does not.
    id: 'chunk-extension',
    rule: 'chunk extensions ;name[=value], a token name, a token or quoted-string value',
    applies: (_k, _m, raw) => {
      const { complete, all } = chunkLines(raw);
      // A line still arriving breaks the grammar when no continuation can mend it.
      const arriving = all.length > complete.length ? all[all.length - 1]! : null;
      return complete.some((l) => !CHUNK_LINE.test(l)) || (arriving !== null && !['', 'a', '"', 'a"'].some((x) => CHUNK_LINE.test(arriving + x)));
    },
  },
  {
    // ADDED (parity). llhttp does not take HTAB as whitespace around a Content-Length or
    // Transfer-Encoding value: "chunked\t" is not chunked to it (a request is refused, a
    // response read until close), "5\t" is no length. The codec refuses such values in both
    // directions rather than read them differently from llhttp.
    id: 'framing-value-htab',
    rule: 'ADDED: no HTAB in Content-Length, Transfer-Encoding or Connection values (parsers disagree whether it ends a token)',
    applies: (_k, _m, { bytes, from }) => {
      const s = bytes.toString('latin1', from);
      const end = s.indexOf('\r\n\r\n');
      return /\n(content-length|transfer-encoding|connection|proxy-connection):[^\r\n]*\t/i.test(end < 0 ? s : s.slice(0, end + 2));
    },
  },
  {
    // ADDED (parity). llhttp checks the URL's syntax, which the codec now does too (the corpus
    // asked for it), but not which form goes with which method: it takes "GET *", "OPTIONS *x",
    // "CONNECT /x".
    id: 'target-form',
    rule: 'ADDED: request-target in the form its method allows (RFC 9112 §3.2: * for OPTIONS, authority for CONNECT)',
    applies: (k, m) => {
      if (k !== 'request' || m.target === undefined) return false;
      const t = m.target;
      if (m.method === 'CONNECT') return !/^(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:[\]]+):\d+$/.test(t);
      return t.startsWith('*') && (t !== '*' || m.method !== 'OPTIONS');
    },
  },
  {
    // ADDED (the fix the corpus case res-1xx-with-cl asked for). llhttp ignores framing fields
    // on a 100 and reads a body for other 1xx; RFC 9110 §15.2: a 1xx ends at its head, §8.6:
    // it carries no Content-Length. A 101 may carry them: the tunnel follows its head.
    id: '1xx-framing-fields',
    rule: 'ADDED: a 1xx response (other than 101) with Content-Length or Transfer-Encoding is refused',
    applies: (k, m) => k === 'response' && m.status !== undefined && m.status >= 100 && m.status < 200 && m.status !== 101 && (has(m, 'content-length') || has(m, 'transfer-encoding')),
  },
  {
    // ADDED (the fix the corpus cases chunk-trailer-* ask for). llhttp applies Content-Length,
    // Transfer-Encoding and Connection found in trailers (it refuses some; a trailer
    // "Connection: keep-alive" keeps an HTTP/1.0 connection open). RFC 9110 §6.5.1: framing and
    // connection fields are not to be processed from trailers; the codec is to refuse them.
    id: 'trailer-framing-fields',
    rule: 'ADDED: no Content-Length, Transfer-Encoding or Connection in trailers',
    applies: (_k, _m, raw) => chunkLines(raw).trailers.some(([n]) => /^(content-length|transfer-encoding|connection|proxy-connection)$/i.test(n)),
  },
  {
    // ADDED (RFC grammar, not framing: confirm). llhttp skips a run of spaces between the
    // request-line elements; RFC 9112 §3 has one SP.
    id: 'request-line-single-sp',
    rule: 'ADDED: request-line = method SP request-target SP HTTP-version',
    applies: (k, _m, raw) => k === 'request' && firstLine(raw).includes('  '),
  },
  {
    // ADDED (RFC grammar, not framing: confirm). llhttp takes any byte but CR/LF in a reason
    // phrase; RFC 9112 §4 allows HTAB, SP, VCHAR, obs-text (the header-value rule).
    id: 'reason-phrase-ctl',
    rule: 'ADDED: no CTLs except HTAB in the reason phrase',
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this rule is about
    applies: (k, _m, raw) => k === 'response' && /[\x00-\x08\x0a-\x1f\x7f]/.test(firstLine(raw)),
  },
  {
    // ADDED (RFC semantics, not framing: confirm). llhttp takes any three digits; RFC 9110 §15:
    // the first digit is the class, 1 to 5 (the codec takes 1 to 9).
    id: 'status-class',
    rule: 'ADDED: status code 100-999',
    applies: (k, m) => k === 'response' && m.status !== undefined && m.status < 100,
  },
];

/** The codec's bound on one chunk's size (src/http1/chunked.ts). */
const MAX_CHUNK_SIZE = 2n ** 48n;

const T = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QS = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';
/** chunk-size [ chunk-ext ] (RFC 9112 §7.1, §7.1.1), without BWS: what the codec accepts. */
const CHUNK_LINE = new RegExp(`^[0-9A-Fa-f]+(?:;${T}(?:=(?:${T}|${QS}))?)*$`);

/** The chunk-size lines of the chunked body after the head that starts at `from`: the
 * complete ones, and all (with the one still arriving); and the complete trailer fields. */
function chunkLines({ bytes, from, chunked }: Raw): { complete: string[]; all: string[]; trailers: [string, string][] } {
  const s = bytes.toString('latin1', from);
  const complete: string[] = [];
  const trailers: [string, string][] = [];
  let i = s.indexOf('\r\n\r\n');
  if (i < 0 || !chunked) return { complete, all: complete, trailers };
  i += 4;
  for (;;) {
    const e = s.indexOf('\r\n', i);
    if (e < 0) return { complete, all: i < s.length ? [...complete, s.slice(i)] : complete, trailers };
    const line = s.slice(i, e);
    complete.push(line);
    const size = parseInt(/^[0-9A-Fa-f]*/.exec(line)![0] || 'x', 16);
    if (size === 0) {
      // The trailer section: field lines up to the empty line.
      for (let t = e + 2, te = s.indexOf('\r\n', t); te > t; t = te + 2, te = s.indexOf('\r\n', t)) {
        const f = s.slice(t, te);
        const c = f.indexOf(':');
        trailers.push(c < 0 ? [f, ''] : [f.slice(0, c), f.slice(c + 1).replace(OWS, '')]);
      }
    }
    if (!(size > 0) || !Number.isSafeInteger(size)) return { complete, all: complete, trailers };
    i = e + 2 + size + 2;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Whether head `m` (after `before`) is followed by a chunked body, as llhttp frames it. */
function framesChunked(kind: Kind, m: Head, before: readonly Head[], methods: readonly string[]): boolean {
  if (codings(m).at(-1) !== 'chunked') return false;
  if (kind === 'request') return m.method !== 'CONNECT'; // an Upgrade request's body is read before the switch
  const s = m.status ?? 200;
  const method = methods[before.filter((x) => x.status! >= 200 || x.status === 101).length];
  return s >= 200 && s !== 204 && s !== 304 && method !== 'HEAD' && !(method === 'CONNECT' && s < 300);
}

/** The transfer codings of all Transfer-Encoding lines, in order, lower-cased. */
function codings(m: Head): string[] {
  return m.headers
    .filter(([n]) => n.toLowerCase() === 'transfer-encoding')
    .flatMap(([, v]) => v.split(','))
    .map((c) => c.replace(OWS, '').toLowerCase());
}

/** A coding list with an empty or non-token element, or chunked twice or not last. */
function teBroken(m: Head): boolean {
  const c = codings(m);
  if (c.length === 0) return false;
  const at = c.indexOf('chunked');
  return c.some((x) => !TOKEN.test(x)) || (at !== -1 && (at !== c.length - 1 || c.lastIndexOf('chunked') !== at));
}

/** The message's first line (start line), from where it begins after any empty lines. */
function firstLine({ bytes, from }: Raw): string {
  let i = from;
  while (i < bytes.length && (bytes[i] === 0x0d || bytes[i] === 0x0a)) i++;
  const s = bytes.toString('latin1', i, Math.min(bytes.length, i + 65536));
  const e = s.search(/\r\n|\n/);
  return e < 0 ? s : s.slice(0, e);
}

/** A head that is still arriving, read naively from its bytes (for the STRICTER rules): the
 * start line so far, and the complete field lines. */
function rawHead(kind: Kind, bytes: Buffer, from: number): Head {
  let i = from;
  while (i < bytes.length && (bytes[i] === 0x0d || bytes[i] === 0x0a)) i++;
  // llhttp ends an HTTP/0.9-style request line (no version) at a bare LF too.
  const lines = bytes.toString('latin1', i).split(/\r?\n/);
  const arriving = lines.pop()!;
  const startDone = lines.length > 0;
  const start = startDone ? lines.shift()! : arriving;
  const headers: [string, string][] = [];
  for (const l of lines) {
    if (l === '') break;
    const c = l.indexOf(':');
    headers.push(c < 0 ? [l, ''] : [l.slice(0, c), l.slice(c + 1).replace(OWS, '')]);
  }
  const head: { -readonly [K in keyof Head]: Head[K] } = { versionMajor: 1, versionMinor: 1, headers, upgrade: false, keepAlive: true };
  const v = (kind === 'request' ? / HTTP\/(\d)(?:\.(\d))?/ : /^HTTP\/(\d)(?:\.(\d))?/).exec(start);
  if (v) {
    head.versionMajor = Number(v[1]);
    if (v[2] !== undefined) head.versionMinor = Number(v[2]);
  } else if (kind === 'request' && (startDone || /^[^ ]+ [^ ]+\r$/.test(start))) {
    head.versionMajor = 0; // a request line with no version is HTTP/0.9 to llhttp
    head.versionMinor = 9;
  }
  if (kind === 'request') {
    const parts = start.split(' ');
    head.method = parts[0];
    if (parts.length >= 3) head.target = parts[1]; // the target is whole once a space follows it
  } else {
    const st = /^HTTP\/\d\.\d (\d{3})/.exec(start);
    if (st) head.status = Number(st[1]);
  }
  return head;
}

export interface Verdict {
  readonly ok: boolean;
  /** llhttp refused bytes the codec still holds as an incomplete tail (see runBoth). */
  readonly deferred?: boolean;
  /** The codec refused a message llhttp has not finished (see runBoth). */
  readonly early?: boolean;
  /** Why not, or which STRICTER rule made a rejection acceptable. */
  readonly note: string;
}

function sameMessage(kind: Kind, a: ScannedMessage, b: OracleMessage): string | null {
  if (kind === 'request' && (a.method !== b.method || a.target !== b.target)) return `request line: codec ${a.method} ${a.target}, llhttp ${b.method} ${b.target}`;
  if (kind === 'response' && a.status !== b.status) return `status: codec ${a.status}, llhttp ${b.status}`;
  if (b.versionMajor !== 1 || a.versionMinor !== b.versionMinor) return `version: codec 1.${a.versionMinor}, llhttp ${b.versionMajor}.${b.versionMinor}`;
  if (JSON.stringify(a.headers) !== JSON.stringify(b.headers)) return `headers: codec ${JSON.stringify(a.headers)}, llhttp ${JSON.stringify(b.headers)}`;
  if (!a.body.equals(b.body)) return `body: codec '${escapeBytes(a.body)}', llhttp '${escapeBytes(b.body)}'`;
  if (JSON.stringify(a.trailers) !== JSON.stringify(b.trailers)) return `trailers: codec ${JSON.stringify(a.trailers)}, llhttp ${JSON.stringify(b.trailers)}`;
  if (a.upgrade !== b.upgrade) return `upgrade: codec ${a.upgrade}, llhttp ${b.upgrade}`;
  return null;
}

/** Judges the codec's result against llhttp's for one input. */
export function judge(kind: Kind, bytes: Buffer, got: ScanResult, ref: OracleResult, methods: readonly string[] = []): Verdict {
  const n = Math.min(got.messages.length, ref.messages.length);
  for (let i = 0; i < n; i++) {
    const d = sameMessage(kind, got.messages[i]!, ref.messages[i]!);
    if (d !== null) return { ok: false, note: `message ${i} differs: ${d}` };
  }
  const k = got.messages.length;
  if (k > ref.messages.length) {
    return ref.error
      ? { ok: false, note: `llhttp rejects message ${ref.messages.length} (${ref.error.code}: ${ref.error.reason}) but the codec accepts it` }
      : { ok: false, note: `the codec completes ${k} messages, llhttp ${ref.messages.length} (boundaries differ)` };
  }
  if (k < ref.messages.length || (!ref.error && got.error)) {
    // The codec stops before llhttp: only a rejection for a STRICTER reason will do.
    if (!got.error) return { ok: false, note: `the codec completes ${k} messages, llhttp ${ref.messages.length} (boundaries differ)` };
    const from = k === 0 ? 0 : ref.messages[k - 1]!.end;
    const whole: Head | null = k < ref.messages.length ? ref.messages[k]! : ref.partial;
    // A head llhttp has not finished yet is judged on the lines that have arrived.
    const m = whole ?? rawHead(kind, bytes, from);
    const rule = STRICTER.find((r) => r.applies(kind, m, { bytes, from, complete: whole !== null, chunked: framesChunked(kind, m, ref.messages.slice(0, k), methods) }));
    if (rule) return { ok: true, note: `stricter: ${rule.id} (${got.error.code})` };
    const note = `the codec rejects message ${k} (${got.error.code}: ${got.error.reason}), which llhttp accepts, for no STRICTER reason`;
    // In a message llhttp has not finished, the codec may just be the first to see the fault.
    return k === ref.messages.length && !ref.error ? { ok: false, early: true, note } : { ok: false, note };
  }
  // Same number of messages.
  if (ref.error) {
    if (got.error) return { ok: true, note: `both reject message ${k}` };
    // llhttp refuses a message while it is still arriving (it checks method and field names
    // byte by byte); the codec may wait for the end of the element, as long as the bytes llhttp
    // refused are in what it holds back as incomplete. runBoth then checks that it does refuse
    // once the head is complete.
    if (bytes.length - got.rest <= ref.error.offset) return { ok: false, deferred: true, note: `llhttp rejects message ${k} (${ref.error.code}: ${ref.error.reason}) before it is complete; the codec waits` };
    return { ok: false, note: `llhttp rejects message ${k} (${ref.error.code}: ${ref.error.reason}) but the codec does not (rest ${got.rest})` };
  }
  if (got.rest !== ref.rest) return { ok: false, note: `incomplete tail: codec ${got.rest} bytes, llhttp ${ref.rest}` };
  return { ok: true, note: k === 0 ? 'both incomplete' : 'same' };
}

export interface Case {
  readonly kind: Kind;
  readonly bytes: Buffer;
  /** Responses: the method of each request answered (HEAD: no body; CONNECT: 2xx is a tunnel). */
  readonly methods?: readonly string[];
}

export interface Outcome extends Verdict {
  readonly got: ScanResult;
  readonly ref: OracleResult;
}

const codec = (c: Case, bytes: Buffer): ScanResult => (c.kind === 'request' ? scanRequests(bytes, NO_LIMITS) : scanResponses(bytes, c.methods ?? [], NO_LIMITS));

/** What ends any head still arriving: the rest of a line and an empty line. */
const COMPLETE_HEAD = Buffer.from('\r\n\r\n');

export function runBoth(c: Case): Outcome {
  const got = codec(c, c.bytes);
  const ref = c.kind === 'request' ? llhttpScanRequests(c.bytes) : llhttpScanResponses(c.bytes, c.methods ?? []);
  const v = judge(c.kind, c.bytes, got, ref, c.methods);
  if (v.deferred) {
    // llhttp's refusal stands for every continuation of these bytes; the codec must refuse
    // at least the one that completes the head, no later than llhttp's message.
    const later = codec(c, Buffer.concat([c.bytes, COMPLETE_HEAD]));
    const ok = later.error !== null && later.messages.length <= ref.messages.length;
    return { ok, note: ok ? `${v.note}, and refuses once the head is complete (${later.error?.code})` : `${v.note}, and still accepts once the head is complete ('\\r\\n\\r\\n' appended)`, got, ref };
  }
  if (v.early) {
    // Judge the same bytes with the head completed: llhttp must then refuse the message too,
    // or the codec's refusal must be one of the STRICTER reasons.
    const more = Buffer.concat([c.bytes, COMPLETE_HEAD]);
    const later = codec(c, more);
    const ref2 = c.kind === 'request' ? llhttpScanRequests(more) : llhttpScanResponses(more, c.methods ?? []);
    const v2 = judge(c.kind, more, later, ref2, c.methods);
    const ok = v2.ok && later.error !== null && later.messages.length === got.messages.length;
    return { ok, note: ok ? `the codec refuses message ${got.messages.length} before llhttp has all of it; completed: ${v2.note}` : v.note, got, ref };
  }
  return { ...v, got, ref };
}

const summary = (r: ScanResult | OracleResult): string => `${r.messages.length} message(s), error ${r.error ? `${r.error.code} (${r.error.reason})` : 'none'}, rest ${r.rest}`;

/** A failure message a person can paste back into a test: the escaped bytes and both results. */
export function describe(c: Case, o: Outcome): string {
  return [o.note, `  ${c.kind}s: '${escapeBytes(c.bytes)}'${c.methods ? `  methods: ${JSON.stringify(c.methods)}` : ''}`, `  codec:  ${summary(o.got)}`, `  llhttp: ${summary(o.ref)}`].join('\n');
}
