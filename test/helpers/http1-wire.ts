// Raw HTTP/1 on the wire for the engine tests: a tolerant message splitter (requests and
// responses, Content-Length, chunked with trailers, 1xx, HEAD/204/304) and a raw client that
// writes bytes the way a test scripts them (one write, 1-byte writes, half-close, stalls) and
// reads responses off the socket. Never depends on the code under test.
import { connect, type Socket } from 'node:net';

export interface WireMessage {
  /** Status for a response, 0 for a request. */
  readonly status: number;
  /** First line: "HTTP/1.1 200 OK" or "GET / HTTP/1.1". */
  readonly startLine: string;
  /** Header lines as sent (name, value), in order. */
  readonly headers: [string, string][];
  /** The head exactly as on the wire, final CRLF CRLF included. */
  readonly head: string;
  /** The body bytes as framed on the wire (chunk sizes and trailers included when chunked). */
  readonly rawBody: Buffer;
  /** The body with chunked framing removed. */
  readonly body: Buffer;
  /** Trailer fields of a chunked message. */
  readonly trailers: [string, string][];
  /** False when the bytes ended before the framing said the message ends. */
  readonly complete: boolean;
}

export function header(m: Pick<WireMessage, 'headers'>, name: string): string | undefined {
  const n = name.toLowerCase();
  const all = m.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  return all.length === 0 ? undefined : all.join(', ');
}

export function headerCount(m: Pick<WireMessage, 'headers'>, name: string): number {
  return m.headers.filter(([k]) => k.toLowerCase() === name.toLowerCase()).length;
}

interface HeadParse {
  startLine: string;
  headers: [string, string][];
  head: string;
  end: number;
}

function parseHead(buf: Buffer, from: number): HeadParse | null {
  const end = buf.indexOf('\r\n\r\n', from);
  if (end === -1) return null;
  const head = buf.subarray(from, end + 4).toString('latin1');
  const lines = head.slice(0, -4).split('\r\n');
  const headers: [string, string][] = [];
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.push([l.slice(0, i), l.slice(i + 1).trim()]);
  }
  return { startLine: lines[0] ?? '', headers, head, end: end + 4 };
}

/** Parses chunked framing from `at`; returns the end offset, or -1 when incomplete. */
function parseChunked(buf: Buffer, at: number, body: Buffer[], trailers: [string, string][]): number {
  let p = at;
  for (;;) {
    const eol = buf.indexOf('\r\n', p);
    if (eol === -1) return -1;
    const size = parseInt(buf.subarray(p, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) return -1;
    p = eol + 2;
    if (size === 0) {
      for (;;) {
        const e = buf.indexOf('\r\n', p);
        if (e === -1) return -1;
        const line = buf.subarray(p, e).toString('latin1');
        p = e + 2;
        if (line === '') return p;
        const i = line.indexOf(':');
        if (i > 0) trailers.push([line.slice(0, i), line.slice(i + 1).trim()]);
      }
    }
    if (buf.length < p + size + 2) return -1;
    body.push(buf.subarray(p, p + size));
    p += size + 2;
  }
}

/**
 * Splits a byte stream into HTTP messages. `kind` "response" needs the request methods in order
 * (for HEAD); interim 1xx responses are returned as messages of their own (they do not consume a
 * method). After a 101 the rest is not HTTP: parsing stops. `closed` says the stream ended, so a
 * response without framing ends there.
 */
export function splitMessages(buf: Buffer, kind: 'request' | 'response', opts: { methods?: string[]; closed?: boolean; limit?: number } = {}): { messages: WireMessage[]; rest: Buffer } {
  const out: WireMessage[] = [];
  const methods = [...(opts.methods ?? [])];
  let p = 0;
  while (p < buf.length && out.length < (opts.limit ?? Infinity)) {
    const h = parseHead(buf, p);
    if (h === null) break;
    const status = kind === 'response' ? Number(/^HTTP\/\d\.\d (\d{3})/.exec(h.startLine)?.[1] ?? 0) : 0;
    const te = (header(h, 'transfer-encoding') ?? '').toLowerCase();
    const cl = header(h, 'content-length');
    const interim = kind === 'response' && status >= 100 && status < 200;
    let noBody = interim;
    if (kind === 'response' && !interim) {
      const m = methods.shift() ?? 'GET';
      if (m === 'HEAD' || status === 204 || status === 304) noBody = true;
    }
    const start = h.end;
    let end = start;
    const body: Buffer[] = [];
    const trailers: [string, string][] = [];
    let complete = true;
    if (noBody) {
      end = start;
    } else if (
      te !== '' &&
      te
        .split(',')
        .map((s) => s.trim())
        .pop() === 'chunked'
    ) {
      end = parseChunked(buf, start, body, trailers);
      if (end === -1) {
        complete = false;
        end = buf.length;
      }
    } else if (cl !== undefined) {
      const n = Number(cl.split(',')[0]);
      end = Math.min(start + n, buf.length);
      complete = start + n <= buf.length;
      body.push(buf.subarray(start, end));
    } else if (kind === 'response') {
      end = buf.length;
      complete = opts.closed ?? false;
      body.push(buf.subarray(start, end));
    }
    const rawBody = buf.subarray(start, end);
    out.push({ status, startLine: h.startLine, headers: h.headers, head: h.head, rawBody, body: te.endsWith('chunked') ? Buffer.concat(body) : rawBody, trailers, complete });
    p = end;
    if (!complete || status === 101) break;
  }
  return { messages: out, rest: buf.subarray(p) };
}

export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

export type Step =
  | { write: string | Buffer }
  /** Writes every byte on its own, `gapMs` apart (0: one per event-loop turn). */
  | { dribble: string | Buffer; gapMs?: number }
  | { wait: number }
  /** Waits until `n` responses (final or interim) have arrived, at most `ms`. */
  | { awaitResponses: number; ms?: number }
  /** Shuts down our write side (FIN), keeps reading. */
  | { end: true }
  /** Destroys the socket (RST if unread data, else FIN) and stops. */
  | { destroy: true };

export interface RawResult {
  readonly data: Buffer;
  /** Responses parsed from data (interim ones included). */
  readonly responses: WireMessage[];
  /** The sidecar closed the connection (end or reset) within the time. */
  readonly closed: boolean;
  readonly error: string | undefined;
  /** ms from connect until the connection closed (or until we gave up). */
  readonly ms: number;
}

/**
 * Connects, runs the steps, then reads until the peer closes or `ms` (counted from connect)
 * passes; with `untilResponses` it stops as soon as that many final responses arrived.
 */
export function rawRequest(address: string, steps: Step[], opts: { ms?: number; methods?: string[]; untilResponses?: number } = {}): Promise<RawResult> {
  const { host, port } = hostPort(address);
  const total = opts.ms ?? 5000;
  const t0 = Date.now();
  return new Promise((resolve) => {
    const s: Socket = connect({ host, port, allowHalfOpen: true });
    s.setNoDelay(true);
    const chunks: Buffer[] = [];
    let closed = false;
    let error: string | undefined;
    let settled = false;
    let waiter: (() => void) | null = null;
    const parse = (): WireMessage[] => splitMessages(Buffer.concat(chunks), 'response', { methods: opts.methods ?? [], closed }).messages;
    const finals = (): number => parse().filter((m) => m.status >= 200 || m.status === 101).length;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data: Buffer.concat(chunks), responses: parse(), closed, error, ms: Date.now() - t0 });
    };
    const timer = setTimeout(finish, total);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      waiter?.();
      if (opts.untilResponses !== undefined && finals() >= opts.untilResponses && parse().every((m) => m.complete)) finish();
    });
    s.on('end', () => {
      closed = true;
      waiter?.();
      finish();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      closed = true;
      waiter?.();
      finish();
    });
    s.on('connect', () => {
      void (async () => {
        for (const st of steps) {
          if (settled || s.destroyed) return;
          if ('write' in st) s.write(typeof st.write === 'string' ? Buffer.from(st.write, 'latin1') : st.write);
          else if ('dribble' in st) {
            const b = Buffer.isBuffer(st.dribble) ? st.dribble : Buffer.from(st.dribble, 'latin1');
            for (let i = 0; i < b.length && !s.destroyed; i++) {
              s.write(b.subarray(i, i + 1));
              await new Promise((r) => (st.gapMs ? setTimeout(r, st.gapMs) : setImmediate(r)));
            }
          } else if ('wait' in st) await new Promise((r) => setTimeout(r, st.wait));
          else if ('awaitResponses' in st) {
            const deadline = Date.now() + (st.ms ?? 3000);
            while (!closed && parse().length < st.awaitResponses && Date.now() < deadline) {
              await new Promise<void>((r) => {
                waiter = r;
                setTimeout(r, 50);
              });
              waiter = null;
            }
          } else if ('end' in st) s.end();
          else if ('destroy' in st) {
            finish();
            return;
          }
        }
      })();
    });
  });
}

/** A request head: request line, headers, blank line. */
export function head(method: string, target: string, headers: [string, string][] | Record<string, string>): string {
  const list = Array.isArray(headers) ? headers : Object.entries(headers);
  return `${method} ${target} HTTP/1.1\r\n${list.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

export function chunked(parts: (string | Buffer)[], trailers: [string, string][] = []): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1');
    if (b.length === 0) continue;
    out.push(Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`0\r\n${trailers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`));
  return Buffer.concat(out);
}
