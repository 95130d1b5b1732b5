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

interface StricterRule {
  readonly id: string;
  /** The codec rule (from the codec's intended strictness) this entry stands for. */
  readonly rule: string;
  readonly applies: (kind: Kind, m: Head, raw: { bytes: Buffer; from: number }) => boolean;
}

const count = (m: Head, lower: string): number => m.headers.filter(([n]) => n.toLowerCase() === lower).length;

export const STRICTER: readonly StricterRule[] = [
  {
    // llhttp accepts "HTTP/2.0" (and other majors/minors it knows) on an HTTP/1 connection.
    id: 'version',
    rule: 'versions HTTP/1.0 and HTTP/1.1 only',
    applies: (_k, m) => m.versionMajor !== 1 || m.versionMinor > 1,
  },
  {
    // llhttp does not look at Host at all (node:http checks it later, in JavaScript).
    id: 'host',
    rule: 'HTTP/1.1 requests need exactly one Host header (RFC 9112 §3.2)',
    applies: (k, m) => k === 'request' && m.versionMajor === 1 && m.versionMinor === 1 && count(m, 'host') !== 1,
  },
  {
    // llhttp skips any run of CR and LF bytes before a message; the codec only skips CRLF pairs.
    id: 'bare-lf-before-message',
    rule: 'CRLF line endings only (bare LF and bare CR rejected)',
    applies: (_k, _m, { bytes, from }) => {
      let i = from;
      while (i < bytes.length && (bytes[i] === 0x0d || bytes[i] === 0x0a)) i++;
      return !/^(\r\n)*$/.test(bytes.toString('latin1', from, i));
    },
  },
  {
    // llhttp skips a run of spaces between the request-line elements.
    id: 'request-line-single-sp',
    rule: 'request-line = method SP request-target SP HTTP-version, one SP each (RFC 9112 §3)',
    applies: (k, _m, raw) => k === 'request' && firstLine(raw).includes('  '),
  },
  {
    // llhttp takes any byte but CR/LF in a reason phrase; RFC 9112 §4 allows HTAB, SP, VCHAR, obs-text.
    id: 'reason-phrase-ctl',
    rule: 'no CTLs except HTAB (the header-value rule, applied to the reason phrase: RFC 9112 §4)',
    applies: (k, _m, raw) => k === 'response' && /[\x00-\x08\x0a-\x1f\x7f]/.test(firstLine(raw)),
  },
  {
    // In a response llhttp reads a body whose Transfer-Encoding does not end in chunked until
    // the connection closes (RFC 9112 §6.3 rule 4); with chunked present but not last, that
    // leaves the chunked coding undecoded. The codec refuses chunked anywhere but last in both
    // directions (a response like that becomes a 502, never a guess).
    id: 'chunked-not-last',
    rule: 'Transfer-Encoding: chunked may appear only once, and last',
    applies: (_k, m) => {
      const codings = m.headers.filter(([n]) => n.toLowerCase() === 'transfer-encoding').flatMap(([, v]) => v.split(',')).map((c) => c.trim().toLowerCase());
      const at = codings.indexOf('chunked');
      return at !== -1 && (at !== codings.length - 1 || codings.lastIndexOf('chunked') !== at);
    },
  },
];

/** The message's first line (start line), from where it begins after any empty lines. */
function firstLine({ bytes, from }: { bytes: Buffer; from: number }): string {
  let i = from;
  while (i < bytes.length && (bytes[i] === 0x0d || bytes[i] === 0x0a)) i++;
  const s = bytes.toString('latin1', i, Math.min(bytes.length, i + 65536));
  const e = s.search(/\r\n|\n/);
  return e < 0 ? s : s.slice(0, e);
}

export interface Verdict {
  readonly ok: boolean;
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
export function judge(kind: Kind, bytes: Buffer, got: ScanResult, ref: OracleResult): Verdict {
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
    const m: Head | null = k < ref.messages.length ? ref.messages[k]! : ref.partial;
    if (m === null) return { ok: false, note: `the codec rejects (${got.error.code}: ${got.error.reason}) bytes llhttp found no fault in` };
    const from = k === 0 ? 0 : ref.messages[k - 1]!.end;
    const rule = STRICTER.find((r) => r.applies(kind, m, { bytes, from }));
    return rule
      ? { ok: true, note: `stricter: ${rule.id} (${got.error.code})` }
      : { ok: false, note: `the codec rejects message ${k} (${got.error.code}: ${got.error.reason}), which llhttp accepts, for no STRICTER reason` };
  }
  // Same number of messages.
  if (ref.error) {
    return got.error
      ? { ok: true, note: `both reject message ${k}` }
      : { ok: false, note: `llhttp rejects message ${k} (${ref.error.code}: ${ref.error.reason}) but the codec does not (rest ${got.rest})` };
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

export function runBoth(c: Case): Outcome {
  const got = c.kind === 'request' ? scanRequests(c.bytes, NO_LIMITS) : scanResponses(c.bytes, c.methods ?? [], NO_LIMITS);
  const ref = c.kind === 'request' ? llhttpScanRequests(c.bytes) : llhttpScanResponses(c.bytes, c.methods ?? []);
  return { ...judge(c.kind, c.bytes, got, ref), got, ref };
}

const summary = (r: ScanResult | OracleResult): string =>
  `${r.messages.length} message(s), error ${r.error ? `${r.error.code} (${r.error.reason})` : 'none'}, rest ${r.rest}`;

/** A failure message a person can paste back into a test: the escaped bytes and both results. */
export function describe(c: Case, o: Outcome): string {
  return [
    o.note,
    `  ${c.kind}s: '${escapeBytes(c.bytes)}'${c.methods ? `  methods: ${JSON.stringify(c.methods)}` : ''}`,
    `  codec:  ${summary(o.got)}`,
    `  llhttp: ${summary(o.ref)}`,
  ].join('\n');
}
