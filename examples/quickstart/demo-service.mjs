// A tiny demo service instance: `node demo-service.mjs PORT VERSION`.
import { createServer } from 'node:http';
const [port, version] = process.argv.slice(2);
createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ service: 'users', version, path: req.url, traceparent: req.headers.traceparent }) + '\n');
}).listen(Number(port), '127.0.0.1');
