// Test upstreams: real HTTP servers on run-time ports that say who they are.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestUpstream {
  readonly name: string;
  readonly server: Server;
  readonly port: number;
  /** "127.0.0.1:port" */
  readonly address: string;
  /** Requests seen so far. */
  readonly seen: { method: string; url: string; headers: IncomingMessage['headers']; bodyBytes: number }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** Default handler: 200 with JSON {name, method, url, headers, bodyBytes}. */
export async function startUpstream(name: string, handler?: Handler): Promise<TestUpstream> {
  const seen: TestUpstream['seen'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: body.length });
      if (handler) return handler(req, res, body);
      const text = JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, bodyBytes: body.length });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    server,
    port,
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A port nothing listens on, chosen in 16000-19999. Not from listen(0): a port in Linux's
 * ephemeral range (32768+) that was free a moment ago can be handed to the next listen(0) — a
 * sidecar started afterwards, say — and is then not dead at all. (The quickstart tests use
 * 20000-32099.)
 */
export async function deadPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 16000 + Math.floor(Math.random() * 4000);
    const s = createServer();
    const free = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      await new Promise<void>((r) => s.close(() => r()));
      return port;
    }
  }
  throw new Error('no free port found below the ephemeral range');
}
