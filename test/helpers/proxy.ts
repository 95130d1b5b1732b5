// Helpers for forward-proxy tests: CONNECT over a raw socket, a test certificate made with
// openssl at test time, a TLS server, and TCP servers that misbehave on purpose.
import { connect, createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = promisify(execFile);

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

export interface ConnectReply {
  /** e.g. 200, 403; 0 when the connection closed without a response head. */
  readonly status: number;
  readonly head: string;
  readonly headers: Record<string, string>;
  /** Bytes after the response head (a tunnel's first bytes, or an error body). */
  readonly rest: Buffer;
  readonly socket: Socket;
}

/** Sends `CONNECT target` (or any raw head) and resolves once the response head arrived. */
export function connectVia(outbound: string, target: string, opts: { headers?: Record<string, string>; raw?: string; ms?: number } = {}): Promise<ConnectReply> {
  const { host, port } = splitAddress(outbound);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no CONNECT response within ${opts.ms ?? 5000} ms`));
    }, opts.ms ?? 5000);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      finish(end);
    };
    const finish = (end: number): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      const head = buf.subarray(0, Math.max(end, 0)).toString('latin1');
      const lines = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      socket.pause();
      resolve({ status, head, headers, rest: end === -1 ? buf : buf.subarray(end + 4), socket });
    };
    const onEnd = (): void => finish(buf.indexOf('\r\n\r\n'));
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    const extra = Object.entries(opts.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(opts.raw ?? `CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n${extra}\r\n`);
  });
}

/** Reads everything from a socket until it ends (or `ms` passes); never rejects. */
export function readAll(socket: Socket, already: Buffer = Buffer.alloc(0), ms = 5000): Promise<{ data: Buffer; ended: boolean; error: string | undefined }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [already];
    let error: string | undefined;
    const done = (ended: boolean): void => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), ended, error });
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => done(true));
    socket.once('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      done(false);
    });
    socket.once('close', () => done(socket.readableEnded));
    socket.resume();
  });
}

export interface TestCert {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  cleanup(): Promise<void>;
}

/** A self-signed certificate for localhost, secure(.mesh) and 127.0.0.1/127.0.0.2, made with openssl. */
export async function makeTestCert(): Promise<TestCert> {
  const dir = await mkdtemp(join(tmpdir(), 'dm-cert-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,DNS:secure,DNS:secure.mesh,IP:127.0.0.1,IP:127.0.0.2',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return { dir, certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Listening<S> {
  readonly server: S;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/** HTTPS server answering 200 "secure <path>". */
export async function startTlsServer(cert: TestCert, host = '127.0.0.1'): Promise<Listening<TlsServer>> {
  const server = createTlsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'tls' });
    res.end(`secure ${req.url}\n`);
  });
  return listening(server, host);
}

/** A raw TCP server with a custom connection handler. */
export async function startTcpServer(onConnection: (s: Socket) => void, host = '127.0.0.1', opts: { allowHalfOpen?: boolean } = {}): Promise<Listening<Server>> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: opts.allowHalfOpen ?? false }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  const l = await listening(server, host);
  return {
    ...l,
    close: () => {
      for (const s of sockets) s.destroy();
      return l.close();
    },
  };
}

async function listening<S extends Server | TlsServer>(server: S, host: string): Promise<Listening<S>> {
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    host,
    port,
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((r) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => r());
      }),
  };
}

/**
 * A port whose TCP handshake never completes, without leaving loopback: a Python listener with
 * backlog 0 that never accepts, its accept queue filled by our own connections. Linux then drops
 * further SYNs, so a connect hangs until its timeout. Resolves null when the trick does not hold
 * here (checked with a probe connect), so the caller can skip with a reason.
 */
export async function startBlackhole(): Promise<{ port: number; close(): void } | null> {
  const py: ChildProcess = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const port = await new Promise<number>((resolve) => {
    let out = '';
    py.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    py.once('exit', () => resolve(0));
  });
  const fillers: Socket[] = [];
  const close = (): void => {
    for (const s of fillers) s.destroy();
    py.stdin!.end();
    py.kill();
  };
  if (port === 0) return null;
  // Fill the accept queue: connect until one connect does not complete within 300 ms.
  for (let i = 0; i < 8; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    fillers.push(s);
    const ok = await new Promise<boolean>((r) => {
      const t = setTimeout(() => r(false), 300);
      s.once('connect', () => {
        clearTimeout(t);
        r(true);
      });
    });
    if (!ok) {
      // Make sure it was not just slow: still no handshake a while later.
      const late = await new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), 300);
        s.once('connect', () => {
          clearTimeout(t);
          r(true);
        });
      });
      if (!late) return { port, close };
    }
  }
  close();
  return null;
}

/** Open file descriptors of this process (Linux). */
export async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}
