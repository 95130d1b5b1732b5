// Servers for the e2e tests, run inside the server namespace (`node netns-servers.js`), on
// IPv4 and IPv6 (dual-stack "::"):
//   8080, 9090  HTTP: answers JSON {port, url, headers} (headers show whether a sidecar was on the path)
//   2525        server-first: "220 e2e ready" banner on connect, then "echo:<line>" per line
//   6379        client-first, redis-like: "PING" → "+PONG"
//   7000        client-first binary echo: "echo:" + bytes
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp, type Socket } from 'node:net';

function listen(server: { listen(port: number, host: string, cb: () => void): unknown }, port: number): Promise<void> {
  return new Promise((r) => server.listen(port, '::', r));
}

const http = (port: number): ReturnType<typeof createHttp> =>
  createHttp((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ port, url: req.url, headers: req.headers, remote: req.socket.remoteAddress }));
    });
  });

const tcp = (onConnect: (s: Socket) => void): ReturnType<typeof createTcp> =>
  createTcp((s) => {
    s.on('error', () => s.destroy());
    s.on('end', () => s.end());
    onConnect(s);
  });

await Promise.all([
  listen(http(8080), 8080),
  listen(http(9090), 9090),
  listen(
    tcp((s) => {
      s.write('220 e2e ready\r\n');
      s.on('data', (c: Buffer) => s.write(`echo:${c.toString()}`));
    }),
    2525,
  ),
  listen(
    tcp((s) => s.on('data', (c: Buffer) => s.write(c.toString().startsWith('PING') ? '+PONG\r\n' : '-ERR\r\n'))),
    6379,
  ),
  listen(
    tcp((s) => s.on('data', (c: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), c])))),
    7000,
  ),
]);
process.stdout.write('ready\n');
