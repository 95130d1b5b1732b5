// fast-check generators for the HTTP/1 differential tests: well-formed request and response
// streams (pipelined, CL and chunked bodies with extensions and trailers, HEAD/204/304/1xx,
// close-delimited bodies, upgrades) and mutations of them aimed at the places parsers
// disagree (framing headers, chunk lines, line endings, control bytes), plus blind byte edits.
import fc from 'fast-check';
import { METHODS } from 'node:http';

/** A message as the parts a mutation can reach. Strings are latin1 (one char = one byte). */
export interface Msg {
  start: string;
  headers: string[];
  body: Body;
  /** Bytes after the message (another protocol's, after an upgrade); last message only. */
  tail: string;
}
export type Body = { kind: 'none' } | { kind: 'raw'; data: string } | { kind: 'chunked'; chunks: { line: string; data: string; lineEnd?: string; dataEnd?: string }[]; last: string; trailers: string[] };

export interface Stream {
  readonly kind: 'request' | 'response';
  readonly msgs: Msg[];
  /** Responses: the method of each request answered. */
  readonly methods: string[];
}

const CRLF = '\r\n';

export function serializeBody(b: Body): string {
  if (b.kind === 'none') return '';
  if (b.kind === 'raw') return b.data;
  return b.chunks.map((c) => c.line + (c.lineEnd ?? CRLF) + c.data + (c.dataEnd ?? CRLF)).join('') + b.last + CRLF + b.trailers.map((t) => t + CRLF).join('') + CRLF;
}

export function serialize(s: Stream): Buffer {
  const text = s.msgs.map((m) => m.start + CRLF + m.headers.map((h) => h + CRLF).join('') + CRLF + serializeBody(m.body) + m.tail).join('');
  return Buffer.from(text, 'latin1');
}

// ---- pieces ----------------------------------------------------------------------------------

const chars = (s: string): string[] => [...s];
const range = (a: number, b: number): string[] => Array.from({ length: b - a + 1 }, (_, i) => String.fromCharCode(a + i));
const ALNUM = chars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789');
const TCHAR = [...ALNUM, ...chars("!#$%&'*+-.^_`|~")];
const PCHAR = [...ALNUM, ...chars("-._~!$&'()*+,;=:@%")];
const VCHAR = range(0x21, 0x7e);
const OBS_TEXT = range(0x80, 0xff);

const str = (unit: string[], minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...unit), minLength, maxLength });

/** Field names that change framing or connection handling: generated only on purpose. */
const SPECIAL = new Set(['content-length', 'transfer-encoding', 'connection', 'proxy-connection', 'upgrade', 'host', 'keep-alive', 'expect']);

const token = str(TCHAR, 1, 12);
const fieldName = fc.oneof(fc.constantFrom('Accept', 'User-Agent', 'X-Request-Id', 'Cookie', 'Content-Type', 'Trailer', 'TE', 'Via', 'traceparent', 'ACCEPT-encoding'), token).filter((n) => !SPECIAL.has(n.toLowerCase()));

/** A field value: visible chars, inner SP/HTAB, sometimes obs-text, sometimes surrounding OWS. */
const fieldValue = fc
  .tuple(
    fc.constantFrom('', ' ', ' ', '\t', '  '),
    fc.array(fc.oneof({ weight: 8, arbitrary: str(VCHAR, 1, 8) }, { weight: 1, arbitrary: str(OBS_TEXT, 1, 2) }), { maxLength: 4 }),
    fc.array(fc.constantFrom(' ', '\t'), { maxLength: 4 }),
    fc.constantFrom('', ' ', '\t', ' \t'),
  )
  .map(([pre, words, seps, post]) => pre + words.map((w, i) => (i > 0 ? (seps[i] ?? ' ') : '') + w).join('') + post);

const fields = fc.array(
  fc.tuple(fieldName, fieldValue).map(([n, v]) => `${n}:${v}`),
  { maxLength: 5 },
);

const hostValue = fc.constantFrom('example.com', 'svc.mesh.local:8080', '127.0.0.1:9000', '[::1]:80', 'a');

const originTarget = fc.tuple(fc.array(str(PCHAR, 0, 8), { minLength: 1, maxLength: 4 }), fc.option(str([...PCHAR, '/', '?'], 0, 12))).map(([segs, q]) => '/' + segs.join('/') + (q === null ? '' : '?' + q));
const absoluteTarget = fc.tuple(fc.constantFrom('http', 'https'), hostValue, originTarget).map(([s, h, p]) => `${s}://${h}${p}`);

const bodyBytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a).toString('latin1'));

const quotedString = fc
  .array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...VCHAR.filter((c) => c !== '"' && c !== '\\'), ' ', '\t') }, { weight: 1, arbitrary: fc.constantFrom('\\"', '\\\\', '\\a') }), { maxLength: 8 })
  .map((a) => `"${a.join('')}"`);
const chunkExt = fc
  .array(
    fc.tuple(token, fc.option(fc.oneof(token, quotedString))).map(([n, v]) => `;${n}${v === null ? '' : '=' + v}`),
    { maxLength: 2 },
  )
  .map((a) => a.join(''));

const hexSize = (n: number) => fc.tuple(fc.constantFrom('', '', '', '0', '00'), fc.boolean()).map(([zeros, upper]) => zeros + (upper ? n.toString(16).toUpperCase() : n.toString(16)));

const chunk = bodyBytes(24)
  .filter((d) => d.length > 0)
  .chain((data) => fc.tuple(hexSize(data.length), chunkExt).map(([size, ext]) => ({ line: size + ext, data })));

const chunkedBody = fc
  .tuple(
    fc.array(chunk, { maxLength: 3 }),
    fc.tuple(fc.constantFrom('0', '0', '000'), chunkExt),
    fc.array(
      fc.tuple(fieldName, fieldValue).map(([n, v]) => `${n}:${v}`),
      { maxLength: 2 },
    ),
  )
  .map(([chunks, [z, ext], trailers]): Body => ({ kind: 'chunked', chunks, last: z + ext, trailers }));

/** The Transfer-Encoding lines of a well-formed chunked message. */
const teLines: fc.Arbitrary<string[]> = fc.constantFrom<string[]>(
  ['Transfer-Encoding: chunked'],
  ['Transfer-Encoding: Chunked'],
  ['transfer-encoding:chunked '],
  ['Transfer-Encoding: gzip, chunked'],
  ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'],
);

type Framing = { headers: string[]; body: Body };
const framing = (allowChunked: boolean): fc.Arbitrary<Framing> =>
  fc.oneof(
    fc.constant<Framing>({ headers: [], body: { kind: 'none' } }),
    bodyBytes(40).map((d): Framing => ({ headers: [`Content-Length: ${d.length}`], body: d.length ? { kind: 'raw', data: d } : { kind: 'none' } })),
    ...(allowChunked ? [fc.tuple(teLines, chunkedBody).map(([h, b]): Framing => ({ headers: h, body: b }))] : []),
  );

/** Inserts `extra` lines among `base` at generated positions, keeping the order of each. */
const shuffleIn = (base: string[], extra: string[], seed: number): string[] => {
  const out = [...base];
  let r = seed;
  let min = 0;
  for (const e of extra) {
    r = (r * 1103515245 + 12345) >>> 0;
    const at = min + (r % (out.length - min + 1));
    out.splice(at, 0, e);
    min = at + 1;
  }
  return out;
};

// ---- requests ----------------------------------------------------------------------------------

const PLAIN_METHODS = METHODS.filter((m) => m !== 'CONNECT');

/** One well-formed request; `last` may close the connection or upgrade it. */
const request = (last: boolean): fc.Arbitrary<Msg> =>
  fc
    .record({
      method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH') }, { weight: 1, arbitrary: fc.constantFrom(...PLAIN_METHODS) }),
      target: fc.oneof({ weight: 5, arbitrary: originTarget }, { weight: 1, arbitrary: absoluteTarget }),
      minor: fc.constantFrom(1, 1, 1, 0),
      host: hostValue,
      hostIn10: fc.boolean(),
      fields,
      framing: framing(true),
      end: last ? fc.constantFrom('open', 'open', 'close', 'upgrade', 'connect', 'options*') : fc.constant('open'),
      tail: last ? bodyBytes(12) : fc.constant(''),
      seed: fc.nat(),
    })
    .map((r): Msg => {
      let method = r.method;
      let target = r.target;
      const own: string[] = [];
      if (r.minor === 1 || r.hostIn10) own.push(`Host: ${r.host}`);
      if (r.minor === 0 && r.end !== 'close') own.push('Connection: keep-alive');
      if (r.end === 'close') own.push('Connection: close');
      let framingHeaders = r.framing.headers;
      let body = r.framing.body;
      let tail = '';
      if (r.end === 'upgrade') {
        own.push('Upgrade: websocket', r.minor === 0 ? 'Connection: keep-alive, Upgrade' : 'Connection: Upgrade');
        tail = r.tail;
      } else if (r.end === 'connect') {
        method = 'CONNECT';
        target = r.host.includes(':') ? r.host : `${r.host}:443`;
        framingHeaders = [];
        body = { kind: 'none' };
        tail = r.tail;
      } else if (r.end === 'options*') {
        method = 'OPTIONS';
        target = '*';
      }
      return { start: `${method} ${target} HTTP/1.${r.minor}`, headers: shuffleIn(r.fields, [...own, ...framingHeaders], r.seed), body, tail };
    });

export const requestStream: fc.Arbitrary<Stream> = fc.tuple(fc.array(request(false), { maxLength: 2 }), request(true)).map(([first, last]) => ({ kind: 'request' as const, msgs: [...first, last], methods: [] }));

// ---- responses ---------------------------------------------------------------------------------

const reason = fc.oneof(
  fc.constantFrom(' OK', ' Not Found', ' ', ''),
  fieldValue.map((v) => ' ' + v.trim()),
);

/** One final response (and the method it answers), possibly preceded by interim 1xx. */
const response = (last: boolean): fc.Arbitrary<{ msgs: Msg[]; method: string }> =>
  fc
    .record({
      interim: fc.array(fc.tuple(fc.constantFrom(100, 102, 103), reason, fields), { maxLength: 2 }),
      status: fc.constantFrom(200, 200, 201, 204, 206, 301, 304, 400, 404, 500, 503),
      method: fc.constantFrom('GET', 'GET', 'POST', 'HEAD'),
      minor: fc.constantFrom(1, 1, 1, 0),
      reason,
      fields,
      framing: framing(true),
      headLength: fc.nat({ max: 5000 }),
      end: last ? fc.constantFrom('open', 'open', 'until-close', 'switch', 'close') : fc.constant('open'),
      tail: last ? bodyBytes(24) : fc.constant(''),
      seed: fc.nat(),
    })
    .map((r) => {
      const msgs: Msg[] = r.interim.map(([s, why, f]) => ({ start: `HTTP/1.1 ${s}${why}`, headers: f, body: { kind: 'none' }, tail: '' }));
      const own: string[] = [];
      if (r.minor === 0 && r.end !== 'close' && r.end !== 'until-close') own.push('Connection: keep-alive');
      if (r.end === 'close') own.push('Connection: close');
      let status: number = r.status;
      let method = r.method;
      let framingHeaders = r.framing.headers;
      let body = r.framing.body;
      let tail = '';
      if (r.end === 'switch') {
        status = 101;
        method = 'GET';
        own.push('Upgrade: websocket', 'Connection: Upgrade');
        framingHeaders = [];
        body = { kind: 'none' };
        tail = r.tail;
      } else if (r.end === 'until-close') {
        if (method === 'HEAD') method = 'GET';
        if (status === 204 || status === 304) status = 200;
        framingHeaders = [];
        body = { kind: 'raw', data: r.tail };
      } else if (method === 'HEAD' || status === 204 || status === 304) {
        // No body; HEAD and 304 may still announce a length (never 204: RFC 9110 §8.6).
        framingHeaders = status !== 204 && r.headLength % 2 === 0 ? [`Content-Length: ${r.headLength}`] : [];
        body = { kind: 'none' };
      }
      msgs.push({ start: `HTTP/1.${r.minor} ${status}${r.reason}`, headers: shuffleIn(r.fields, [...own, ...framingHeaders], r.seed), body, tail });
      return { msgs, method };
    });

export const responseStream: fc.Arbitrary<Stream> = fc.tuple(fc.array(response(false), { maxLength: 2 }), response(true)).map(([first, last]) => {
  const all = [...first, last];
  return { kind: 'response' as const, msgs: all.flatMap((r) => r.msgs), methods: all.map((r) => r.method) };
});

// ---- mutations -----------------------------------------------------------------------------------

/** Header lines that attack framing or syntax, from the smuggling literature (see the corpus). */
export const NASTY_FIELDS: readonly string[] = [
  'Content-Length: 0',
  'Content-Length: 5',
  'Content-Length: 5',
  'Content-Length: 007',
  'Content-Length: +5',
  'Content-Length: -1',
  'Content-Length: 0x5',
  'Content-Length: 5, 5',
  'Content-Length: 5 5',
  'Content-Length:',
  'Content-Length: 99999999999999999999',
  'Content-Length:  5 ',
  'Content-Length: 5\x00',
  'content-length: 2',
  'Content-Length\r\n : 5',
  'Content-Length: 5\r\n 5',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: chunked, gzip',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: xchunked',
  'Transfer-Encoding: chunkedx',
  'Transfer-Encoding: chunked ',
  'Transfer-Encoding:  chunked',
  'Transfer-Encoding:\tchunked',
  'Transfer-Encoding: CHUNKED',
  'Transfer-Encoding: chunked, chunked',
  'Transfer-Encoding: ,chunked',
  'Transfer-Encoding: chunked,',
  'Transfer-Encoding: identity',
  'Transfer-Encoding: gzip',
  'Transfer-Encoding:',
  'Transfer-Encoding: "chunked"',
  'Transfer-Encoding: chunked;q=1',
  'Transfer-Encoding : chunked',
  ' Transfer-Encoding: chunked',
  '\tTransfer-Encoding: chunked',
  'Transfer-Encoding\t: chunked',
  'Transfer_Encoding: chunked',
  'Transfer-Encoding: \x0bchunked',
  'Transfer-Encoding: chunked\r\n , identity',
  'Transfer-Encoding: x\nTransfer-Encoding: chunked',
  'X: a\r\n b',
  'X: a\x00b',
  'X: a\x7fb',
  'X: a\x01',
  'X: a\rb',
  'X: a\nb',
  'X : v',
  ': v',
  'X',
  'X:\x1b[0m',
  'X: \x80\xff',
  'Host: other.example',
  'Host:',
  'Connection: close',
  'Connection: keep-alive',
  'Connection: upgrade',
  'Upgrade: websocket',
  'Proxy-Connection: close',
  'Expect: 100-continue',
  'Trailer: Content-Length',
  // Unicode whitespace that a language's trim() may eat (NBSP is 0xA0 in latin1).
  'Transfer-Encoding: chunked\xa0',
  'Transfer-Encoding: \xa0chunked',
  'Content-Length: \xa05',
  'Connection: close\xa0',
  'Connection: \xa0keep-alive',
];

/** Chunk size lines that parsers have read differently. */
export const NASTY_CHUNK_LINES: readonly string[] = [
  '0x5',
  ' 5',
  '5 ',
  '5\t',
  '-1',
  '+5',
  'fffffffffffffffffff',
  '10000000000000000',
  '5;',
  '5; a=b',
  '5;a=',
  '5;a="b',
  '5 ;a',
  '5;a=b c',
  '5;a="\x00"',
  '5;a="\\\x7f"',
  '5;a=\x80',
  '00000000000000000005',
  '',
  ' ',
  '5\n',
  '5\r',
  '5;a\n',
  'g',
  '0',
  '0;',
  '5;a=b;',
  '5;=b',
  '5;a="x"y',
];

/** Request-targets at the edges of the four forms (RFC 9112 §3.2) and of llhttp's URL parser. */
export const NASTY_TARGETS: readonly string[] = [
  '*',
  '*x',
  'foo',
  'http:x',
  'http:/x',
  'http://',
  'http://a@b/',
  'http://[::1/',
  'HTTP://A/',
  'h-t.t+p://a/',
  '1http://a/',
  'a:1',
  'example.com:443',
  '?x',
  '#x',
  '//',
  '/\\',
  '/%zz',
  '/a#b#c',
  '/a\x7f',
  '/\x80',
  '/a\tb',
  '/\x00',
  '/a b',
  '/a?b"c',
  '/{}|^`<>',
];

/** A byte-level edit; positions are taken modulo the length at apply time. */
export type Edit =
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'delete'; at: number; n: number }
  | { op: 'crlf'; nth: number; to: string }
  | { op: 'dup'; at: number; n: number }
  | { op: 'cut'; at: number };

const INTERESTING = [0x0d, 0x0a, 0x09, 0x20, 0xa0, 0x85, 0x3a, 0x3b, 0x2c, 0x22, 0x5c, 0x00, 0x7f, 0x80, 0xff, 0x0b, 0x0c, 0x30, 0x35, 0x61, 0x41, 0x2d, 0x2b, 0x3d, 0x2f];
const someByte = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...INTERESTING) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) });

export const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: someByte }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(someByte, { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ op: fc.constant('crlf' as const), nth: fc.nat(), to: fc.constantFrom('\n', '\r', '\r\r\n', '\n\r', '\r\n\r\n', '\r\n ') }),
  fc.record({ op: fc.constant('dup' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
);

export function applyEdit(b: Buffer, e: Edit): Buffer {
  if (b.length === 0) return b;
  switch (e.op) {
    case 'set': {
      const c = Buffer.from(b);
      c[e.at % b.length] = e.byte;
      return c;
    }
    case 'insert': {
      const at = e.at % (b.length + 1);
      return Buffer.concat([b.subarray(0, at), Buffer.from(e.bytes), b.subarray(at)]);
    }
    case 'delete': {
      const at = e.at % b.length;
      return Buffer.concat([b.subarray(0, at), b.subarray(at + e.n)]);
    }
    case 'crlf': {
      const s = b.toString('latin1');
      const at: number[] = [];
      for (let i = s.indexOf(CRLF); i >= 0; i = s.indexOf(CRLF, i + 1)) at.push(i);
      if (at.length === 0) return b;
      const i = at[e.nth % at.length]!;
      return Buffer.from(s.slice(0, i) + e.to + s.slice(i + 2), 'latin1');
    }
    case 'dup': {
      const at = e.at % b.length;
      const piece = b.subarray(at, at + e.n);
      return Buffer.concat([b.subarray(0, at + piece.length), piece, b.subarray(at + piece.length)]);
    }
    case 'cut':
      return b.subarray(0, e.at % (b.length + 1));
  }
}

/** A structural mutation: a nasty field line in one message, or a nasty chunk size line. */
export type Structural =
  | { op: 'field'; msg: number; at: number; line: string; replace: boolean }
  | { op: 'chunk'; msg: number; chunk: number; line: string }
  | { op: 'trailer'; msg: number; line: string }
  | { op: 'target'; msg: number; target: string }
  | { op: 'chunk-end'; msg: number; chunk: number; data: boolean; to: string }
  | { op: 'none' };

export const structural: fc.Arbitrary<Structural> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('field' as const), msg: fc.nat(), at: fc.nat(), line: fc.constantFrom(...NASTY_FIELDS), replace: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('chunk' as const), msg: fc.nat(), chunk: fc.nat(), line: fc.constantFrom(...NASTY_CHUNK_LINES) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('trailer' as const), msg: fc.nat(), line: fc.constantFrom(...NASTY_FIELDS) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('target' as const), msg: fc.nat(), target: fc.constantFrom(...NASTY_TARGETS) }) },
  // What ends a chunk-size line or a chunk's data: missing, bare LF, bare CR, junk, doubled.
  { weight: 1, arbitrary: fc.record({ op: fc.constant('chunk-end' as const), msg: fc.nat(), chunk: fc.nat(), data: fc.boolean(), to: fc.constantFrom('', '\n', '\r', 'X\r\n', '\r\n\r\n', '\n\r', ' \r\n') }) },
  { weight: 1, arbitrary: fc.constant({ op: 'none' as const }) },
);

export function applyStructural(s: Stream, m: Structural): Stream {
  if (m.op === 'none' || s.msgs.length === 0) return s;
  const msgs = s.msgs.map((x) => ({ ...x, headers: [...x.headers] }));
  const target = msgs[m.msg % msgs.length]!;
  if (m.op === 'field') {
    const at = m.at % (target.headers.length + 1);
    if (m.replace && at < target.headers.length) target.headers[at] = m.line;
    else target.headers.splice(at, 0, m.line);
  } else if (m.op === 'target') {
    const parts = target.start.split(' ');
    if (s.kind === 'request' && parts.length === 3) target.start = `${parts[0]} ${m.target} ${parts[2]}`;
    else target.headers.push('X: ' + m.target);
  } else if (m.op === 'chunk-end') {
    const k = msgs.findIndex((x, i) => i >= m.msg % msgs.length && x.body.kind === 'chunked' && x.body.chunks.length > 0);
    const t = k >= 0 ? msgs[k]! : null;
    if (t && t.body.kind === 'chunked') {
      const which = m.chunk % t.body.chunks.length;
      t.body = { ...t.body, chunks: t.body.chunks.map((c, i) => (i !== which ? c : m.data ? { ...c, dataEnd: m.to } : { ...c, lineEnd: m.to })) };
    }
  } else if (m.op === 'trailer') {
    const k = msgs.findIndex((x, i) => i >= m.msg % msgs.length && x.body.kind === 'chunked');
    const t = k >= 0 ? msgs[k]! : null;
    if (t && t.body.kind === 'chunked') t.body = { ...t.body, trailers: [...t.body.trailers, m.line] };
    else target.headers.push(m.line);
  } else {
    // The first chunked message at or after the chosen one.
    const k = msgs.findIndex((x, i) => i >= m.msg % msgs.length && x.body.kind === 'chunked');
    const t = k >= 0 ? msgs[k]! : null;
    if (t && t.body.kind === 'chunked') {
      const b = t.body;
      const n = b.chunks.length + 1;
      const which = m.chunk % n;
      t.body = which < b.chunks.length ? { ...b, chunks: b.chunks.map((c, i) => (i === which ? { ...c, line: m.line } : c)) } : { ...b, last: m.line };
    } else {
      target.headers.push(m.line.startsWith(' ') ? 'X:' + m.line : 'X: ' + m.line);
    }
  }
  return { ...s, msgs };
}
