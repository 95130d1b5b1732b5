// The service every bench row talks to, run as its own process so that its CPU is not
// charged to the load generator or the sidecar. GET / answers a small fixed body;
// GET /bulk?bytes=N streams N bytes (the bulk-throughput workload).
import { createServer } from 'node:http';
import { exitWithParent } from './load/exit-with-parent.js';

const SMALL = Buffer.from('{"ok":true,"service":"bench"}\n');
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('/bulk?bytes=');
  if (q >= 0) {
    let left = Number(url.slice(q + 12));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(SMALL.length) });
  res.end(SMALL);
});
server.keepAliveTimeout = 60_000;
const host = process.argv[2] ?? '127.0.0.1';
server.listen({ host, port: Number(process.argv[3] ?? 0), backlog: 4096 }, () => {
  const a = server.address();
  if (a !== null && typeof a === 'object') process.stdout.write(`listening ${a.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
exitWithParent();
