// A scripted raw-socket HTTP/1 upstream for the engine tests. It records every request exactly
// as it arrived (head and framed body bytes), serves requests of one connection strictly in
// order (pipelining), and misbehaves on purpose by path:
//   (any)             200 JSON {name, method, target, bodyBytes, sha256, conn}; honours Connection: close
//   Expect: 100-continue on any path: "HTTP/1.1 100 Continue" with `x-interim: upstream` first
//   HEAD              the head a GET would get, no body
//   /hints            103 Early Hints (Link), then 200
//   /trailers         chunked response with a trailer `x-checksum: 42`
//   /204 /304         no body
//   /close            200 with Connection: close, then closes
//   /never            never answers
//   /slow/<ms>        answers after <ms>
//   /garbage          answers non-HTTP bytes
//   /bighead          a 200 KB response head
//   /truncate         promises 1000 bytes, sends 10, closes
//   /big/<n>          200 with an n-byte body: pattern(n), so that clients can check every byte
//   /dribble-resp/<n> the same in 3-byte (head) and 100-byte (body) writes
//   /upgrade-400      400 to anything (an upgrade refused), connection kept
//   /ws...            with Upgrade: websocket: a real `ws` echo server (text and binary)
//   /ws-close         with Upgrade: websocket: a valid 101, then the connection closed at once
//   /ws-greet         with Upgrade: websocket: 101 and a text frame "greetings" in one write
//   /resp-cl-te       a response with both Content-Length and chunked; /resp-two-cl: two Content-Lengths
//   /desync           a complete response followed by the bytes of another one (must not be reused)
//   /desync-late      the same, the extra response 50 ms later (while the connection idles)
//   /until-close      a response without framing, ended by closing; /http10: an HTTP/1.0 response
//   /no-reason        "HTTP/1.1 200" without a reason phrase; /hop: Connection-listed response headers,
//                     and the request headers it received as JSON
//   /multi-1xx        100, two 103s, then 200
//   /head-with-body   a body even to HEAD; /204-with-body: a 204 followed by a fake response
//   /widehead/<n>     a 200 whose head is about n bytes (3000-byte header lines)
//   /respond          answers the bytes of the request header x-respond-b64 (base64), then closes
//   /early            with a body: a 413 as soon as the head is in, the body read and dropped
//   /early-close      with a body: a 413 with Connection: close as soon as the head is in, then FIN
//   /expect-reject... with Expect: a 413 at once, no 100 (the body may never come)
//   /no-continue...   ignores Expect: no 100, waits for the body
//   /sse              a chunked event stream: five events 150 ms apart
//   /__seen, /__reset the recorder (JSON, bodies cut to 64 KiB), never recorded themselves
// Runs in-process (startScriptedUpstream) or as a process (http1-upstream-main.ts) in a namespace.
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createHash } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { splitMessages, header, type WireMessage } from './http1-wire.js';

export interface SeenRequest {
  readonly conn: number;
  readonly method: string;
  readonly target: string;
  readonly head: string;
  readonly headers: [string, string][];
  /** Body bytes as framed on the wire (chunk sizes, trailers). */
  readonly rawBody: Buffer;
  readonly body: Buffer;
  readonly trailers: [string, string][];
}

export interface ScriptedUpstream {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly seen: SeenRequest[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections open now. */
  open(): number;
  close(): Promise<void>;
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

let patternCache = Buffer.alloc(0);
/** n deterministic bytes that differ from position to position (a stale or shifted byte shows). */
export function pattern(n: number): Buffer {
  if (patternCache.length < n) {
    const b = Buffer.allocUnsafe(Math.max(n, 1024 * 1024));
    let x = 0x2545f491;
    for (let i = 0; i < b.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    patternCache = b;
  }
  return patternCache.subarray(0, n);
}

export function patternSha256(n: number): string {
  return createHash('sha256').update(pattern(n)).digest('hex');
}

function respond(s: Socket, status: string, headers: [string, string][], body: Buffer | string = ''): void {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  s.write(Buffer.concat([Buffer.from(`HTTP/1.1 ${status}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}content-length: ${b.length}\r\n\r\n`), b]));
}

export interface ScriptedUpstreamOptions {
  host?: string;
  port?: number;
  /** Closes a keep-alive connection idle this long after a response (as servers' keep-alive timeouts do). */
  idleCloseMs?: number;
}

export async function startScriptedUpstream(name: string, opts: ScriptedUpstreamOptions = {}): Promise<ScriptedUpstream> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;

  // The WebSocket side: a real `ws` server behind a node:http server on loopback; /ws... upgrades
  // are relayed to it byte for byte.
  const wsHttp: HttpServer = createHttpServer((_req, res) => res.end('ws only'));
  const wss = new WebSocketServer({ server: wsHttp });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
  await new Promise<void>((r) => wsHttp.listen(0, '127.0.0.1', r));
  const wsPort = (wsHttp.address() as AddressInfo).port;

  const handle = async (s: Socket, m: WireMessage, conn: number): Promise<'next' | 'stop'> => {
    const [method, target = '/'] = m.startLine.split(' ');
    const path = target.replace(/^https?:\/\/[^/]+/, '').split('?')[0] ?? '/';
    if (path === '/__seen') {
      // Bodies as base64, the first 64 KiB of each (the full length in bodyBytes).
      respond(s, '200 OK', [['content-type', 'application/json']], JSON.stringify(seen.map((x) => ({ ...x, rawBody: x.rawBody.subarray(0, 65536).toString('base64'), body: undefined, bodyBytes: x.body.length }))));
      return 'next';
    }
    if (path === '/__reset') {
      seen.length = 0;
      respond(s, '200 OK', [], 'reset');
      return 'next';
    }
    seen.push({ conn, method: method ?? '', target, head: m.head, headers: m.headers, rawBody: m.rawBody, body: m.body, trailers: m.trailers });
    const close = /(^|,)\s*close\s*($|,)/i.test(header(m, 'connection') ?? '');
    const extra: [string, string][] = [['x-upstream', name]];
    if (close) extra.push(['connection', 'close']);
    const done = (): 'next' | 'stop' => {
      if (close) {
        s.end();
        return 'stop';
      }
      return 'next';
    };
    const isHead = method === 'HEAD';
    const jsonBody = (): string => JSON.stringify({ name, method, target, bodyBytes: m.body.length, sha256: createHash('sha256').update(m.body).digest('hex'), conn });
    if (/^\/slow\/\d+/.test(path)) await new Promise((r) => setTimeout(r, Number(path.split('/')[2])));
    if (path === '/never') return 'stop';
    if (path === '/hints') s.write('HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n');
    if (path === '/trailers') {
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n${close ? 'connection: close\r\n' : ''}\r\n`);
      if (!isHead) s.write('6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: 42\r\n\r\n');
      return done();
    }
    if (path === '/204') {
      s.write(`HTTP/1.1 204 No Content\r\nx-upstream: ${name}\r\n\r\n`);
      return done();
    }
    if (path === '/304') {
      s.write(`HTTP/1.1 304 Not Modified\r\nx-upstream: ${name}\r\netag: "v1"\r\n\r\n`);
      return done();
    }
    if (path === '/close') {
      s.end(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\nconnection: close\r\ncontent-length: 6\r\n\r\nclosed`);
      return 'stop';
    }
    if (path === '/garbage') {
      s.write('SSH-2.0-OpenSSH_9.6 this is not http\r\n\x00\x01\x02\r\n\r\n');
      setTimeout(() => s.destroy(), 3000).unref();
      return 'stop';
    }
    if (path === '/bighead') {
      let h = 'HTTP/1.1 200 OK\r\n';
      for (let i = 0; h.length < 200 * 1024; i++) h += `x-filler-${i}: ${'f'.repeat(200)}\r\n`;
      s.write(h + 'content-length: 2\r\n\r\nok');
      return done();
    }
    if (path === '/truncate') {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789');
      setTimeout(() => s.destroy(), 50);
      return 'stop';
    }
    if (/^\/big\/\d+/.test(path)) {
      const n = Number(path.split('/')[2]);
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-length: ${n}\r\n${close ? 'connection: close\r\n' : ''}\r\n`);
      if (!isHead) s.write(pattern(n));
      return done();
    }
    if (/^\/dribble-resp\/\d+/.test(path)) {
      // The response in many small writes (head 3 bytes at a time, body 100): every boundary
      // the sidecar's reads can fall on.
      const n = Number(path.split('/')[2]);
      const out = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\nx-dribbled: yes\r\ncontent-length: ${n}\r\n\r\n`), isHead ? Buffer.alloc(0) : pattern(n)]);
      const headLen = out.indexOf('\r\n\r\n') + 4;
      for (let p = 0; p < out.length && !s.destroyed;) {
        const step = p < headLen ? 3 : 100;
        s.write(out.subarray(p, p + step));
        p += step;
        await new Promise((r) => setImmediate(r));
      }
      return done();
    }
    if (path === '/resp-cl-te') {
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      return done();
    }
    if (path === '/resp-two-cl') {
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-length: 5\r\ncontent-length: 2\r\n\r\nhello`);
      return done();
    }
    if (path === '/sse') {
      // Five chunks 150 ms apart: a relaying proxy must pass each on as it comes.
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n`);
      for (let i = 0; i < 5; i++) {
        const ev = `data: ${i} ${Date.now()}\n\n`;
        s.write(`${Buffer.byteLength(ev).toString(16)}\r\n${ev}\r\n`);
        await new Promise((r) => setTimeout(r, 150));
      }
      s.write('0\r\n\r\n');
      return done();
    }
    if (path === '/head-with-body') {
      // A buggy upstream: a body even for HEAD, and a 204 with bytes after it.
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-length: 5\r\n\r\nhello`);
      return done();
    }
    if (path === '/204-with-body') {
      s.write(`HTTP/1.1 204 No Content\r\nx-upstream: ${name}\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nEVIL`);
      return done();
    }
    if (path === '/multi-1xx') {
      s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </b.js>; rel=preload\r\n\r\n');
      respond(s, '200 OK', extra, 'after three 1xx');
      return done();
    }
    if (/^\/widehead\/\d+/.test(path)) {
      // A response head of about n bytes in 3000-byte header lines.
      const n = Number(path.split('/')[2]);
      const lines: [string, string][] = [];
      for (let i = 0, size = 0; size < n; i++, size += 3000 + 16) lines.push([`x-wide-${i}`, 'w'.repeat(3000)]);
      respond(s, '200 OK', [...extra, ...lines], 'wide');
      return done();
    }
    if (path === '/respond') {
      // Sends the bytes given (base64) in x-respond-b64 as the response, then closes.
      s.write(Buffer.from(header(m, 'x-respond-b64') ?? '', 'base64'));
      setTimeout(() => s.end(), 20).unref();
      return 'stop';
    }
    if (path === '/desync') {
      // A complete 2-byte response, then bytes that look like the next response: a pooled
      // connection reused after this would answer the next request with "EVIL!".
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!`);
      return done();
    }
    if (path === '/desync-late') {
      // A complete response, and 50 ms later (the connection idle in a pool by then) another one.
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-length: 2\r\n\r\nok`);
      setTimeout(() => {
        if (!s.destroyed) s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!');
      }, 50).unref();
      return done();
    }
    if (path === '/until-close') {
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\ncontent-type: text/plain\r\n\r\nbody delimited by close`);
      setTimeout(() => s.end(), 50);
      return 'stop';
    }
    if (path === '/http10') {
      s.end(`HTTP/1.0 200 OK\r\nx-upstream: ${name}\r\ncontent-length: 6\r\n\r\nold ok`);
      return 'stop';
    }
    if (path === '/no-reason') {
      s.write(`HTTP/1.1 200\r\nx-upstream: ${name}\r\ncontent-length: 2\r\n\r\nok`);
      return done();
    }
    if (path === '/hop') {
      const body = JSON.stringify({ headers: m.headers });
      s.write(`HTTP/1.1 200 OK\r\nx-upstream: ${name}\r\nconnection: x-resp-private\r\nx-resp-private: secret\r\nkeep-alive: timeout=5\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return done();
    }
    if (path === '/upgrade-400') {
      respond(s, '400 Bad Request', extra, isHead ? '' : 'no upgrade here');
      return done();
    }
    const upgrade = (header(m, 'upgrade') ?? '').toLowerCase();
    if (path === '/ws-greet' && upgrade === 'websocket') {
      // The 101 and a first server frame in one write; closes a little later.
      const accept = createHash('sha1')
        .update((header(m, 'sec-websocket-key') ?? '') + WS_GUID)
        .digest('base64');
      s.write(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`), Buffer.from([0x81, 9]), Buffer.from('greetings')]));
      setTimeout(() => s.end(), 500).unref();
      return 'stop';
    }
    if (path === '/ws-close' && upgrade === 'websocket') {
      const accept = createHash('sha1')
        .update((header(m, 'sec-websocket-key') ?? '') + WS_GUID)
        .digest('base64');
      s.end(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
      return 'stop';
    }
    const body = jsonBody();
    s.write(`HTTP/1.1 200 OK\r\n${extra.map(([k, v]) => `${k}: ${v}\r\n`).join('')}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${isHead ? '' : body}`);
    return done();
  };

  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    const conn = ++accepted;
    s.setNoDelay(true); // no Nagle: pipelined responses must not wait for delayed ACKs
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    let buf = Buffer.alloc(0);
    let busy = false;
    let stopped = false;
    let sent100 = false; // 100 Continue already sent for the message at the front
    let ended = false;
    let idleTimer: NodeJS.Timeout | null = null;
    const armIdle = (): void => {
      if (opts.idleCloseMs === undefined) return;
      if (idleTimer !== null) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (!busy && buf.length === 0) s.end();
      }, opts.idleCloseMs);
      idleTimer.unref();
    };
    s.once('close', () => {
      if (idleTimer !== null) clearTimeout(idleTimer);
    });
    const pump = async (): Promise<void> => {
      if (busy || stopped) return;
      busy = true;
      try {
        while (!stopped && buf.length > 0) {
          const headEnd = buf.indexOf('\r\n\r\n');
          if (headEnd === -1) break;
          const { messages } = splitMessages(buf, 'request', { limit: 1 });
          const m = messages[0];
          if (m === undefined) break;
          const upgrade = (header(m, 'upgrade') ?? '').toLowerCase();
          const target = m.startLine.split(' ')[1] ?? '/';
          const path = target.replace(/^https?:\/\/[^/]+/, '').split('?')[0] ?? '/';
          if (upgrade === 'websocket' && path.startsWith('/ws') && path !== '/ws-close' && path !== '/ws-greet') {
            // Hand the connection to the real WebSocket server, bytes unchanged.
            stopped = true;
            seen.push({ conn, method: 'GET', target, head: m.head, headers: m.headers, rawBody: Buffer.alloc(0), body: Buffer.alloc(0), trailers: [] });
            const inner = connect({ host: '127.0.0.1', port: wsPort });
            inner.on('error', () => s.destroy());
            s.removeAllListeners('data');
            s.on('error', () => inner.destroy());
            inner.write(buf);
            s.pipe(inner);
            inner.pipe(s);
            s.once('close', () => inner.destroy());
            inner.once('close', () => s.destroy());
            return;
          }
          const expects = /100-continue/i.test(header(m, 'expect') ?? '') && !path.startsWith('/no-continue') && !path.startsWith('/expect-reject');
          if (expects && !sent100) {
            sent100 = true;
            s.write('HTTP/1.1 100 Continue\r\nx-interim: upstream\r\n\r\n');
          }
          if (!m.complete) {
            if (path === '/early-close') {
              // Answers and closes its sending side before the body is in; reads and drops the rest.
              seen.push({ conn, method: 'POST', target, head: m.head, headers: m.headers, rawBody: Buffer.alloc(0), body: Buffer.alloc(0), trailers: [] });
              respond(
                s,
                '413 Payload Too Large',
                [
                  ['x-upstream', name],
                  ['connection', 'close'],
                ],
                'too large, bye',
              );
              s.end();
              stopped = true;
              return;
            }
            if ((path === '/early' || path.startsWith('/expect-reject')) && !sent100) {
              sent100 = true; // reuse the flag: answer once, before the body
              respond(s, '413 Payload Too Large', [['x-upstream', name]], 'too large');
            }
            break;
          }
          if (path === '/early' || path.startsWith('/expect-reject')) {
            seen.push({ conn, method: 'POST', target, head: m.head, headers: m.headers, rawBody: m.rawBody, body: m.body, trailers: m.trailers });
            if (!sent100) respond(s, '413 Payload Too Large', [['x-upstream', name]], 'too large');
            sent100 = false;
            buf = buf.subarray(m.head.length + m.rawBody.length);
            continue;
          }
          sent100 = false;
          buf = buf.subarray(m.head.length + m.rawBody.length);
          if ((await handle(s, m, conn)) === 'stop') stopped = true;
        }
      } finally {
        busy = false;
      }
      if (!stopped && buf.indexOf('\r\n\r\n') !== -1) {
        const { messages } = splitMessages(buf, 'request', { limit: 1 });
        if (messages[0]?.complete) return pump();
      }
      if (ended && !stopped && !s.destroyed) s.end();
      else if (!stopped) armIdle();
    };
    s.on('data', (c: Buffer) => {
      if (stopped) return;
      buf = Buffer.concat([buf, c]);
      void pump();
    });
    s.on('end', () => {
      ended = true;
      if (!busy && !stopped) s.end();
    });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    address: `${opts.host ?? '127.0.0.1'}:${port}`,
    seen,
    connections: () => accepted,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const c of wss.clients) c.terminate();
      wsHttp.closeAllConnections();
      await Promise.all([new Promise<void>((r) => server.close(() => r())), new Promise<void>((r) => wss.close(() => wsHttp.close(() => r())))]);
    },
  };
}
