// Run as a child process (inside the bench namespace when there is one): the cost of an mTLS
// handshake on a sidecar's inbound listener (or HAProxy's TLS bind), measured as the time of
// N sequential requests each on a new mTLS connection minus N on one kept-alive connection.
// Prints one JSON line: {"newConnMs": per request, "keepAliveMs": per request, "handshakeMs"}.
import { connect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [host, portText, certDir, nText] = process.argv.slice(2);
const port = Number(portText);
const n = Number(nText ?? '300');
const files = { cert: readFileSync(join(certDir!, 'cert.pem')), key: readFileSync(join(certDir!, 'key.pem')), ca: readFileSync(join(certDir!, 'ca.pem')) };
const REQUEST = 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n';

function open(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, ...files, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' }, () => resolve(s));
    s.once('error', reject);
  });
}

/** One request; resolves when a whole response (Content-Length framed) arrived. */
function exchange(s: TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const len = /content-length:\s*(\d+)/i.exec(buf.slice(0, end));
      if (len === null || buf.length - end - 4 >= Number(len[1])) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(REQUEST);
  });
}

async function main(): Promise<void> {
  const ka = await open();
  for (let i = 0; i < 20; i++) await exchange(ka); // warm up
  let t = performance.now();
  for (let i = 0; i < n; i++) await exchange(ka);
  const keepAliveMs = (performance.now() - t) / n;
  ka.destroy();
  for (let i = 0; i < 20; i++) {
    const s = await open();
    await exchange(s);
    s.destroy();
  }
  t = performance.now();
  for (let i = 0; i < n; i++) {
    const s = await open();
    await exchange(s);
    s.destroy();
  }
  const newConnMs = (performance.now() - t) / n;
  process.stdout.write(JSON.stringify({ newConnMs, keepAliveMs, handshakeMs: newConnMs - keepAliveMs }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${String(e)}\n`);
  process.exit(1);
});
