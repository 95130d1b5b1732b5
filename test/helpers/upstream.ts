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

/** A port on loopback where nothing listens (bound then released). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
