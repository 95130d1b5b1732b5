// A tunnel reuses its read buffer only while the client takes each chunk at once; a slow
// client must still receive every byte, in order, through both CONNECT and backpressure.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { connectVia, startTcpServer, type Listening } from '../helpers/proxy.js';
import type { Server } from 'node:net';

const PAYLOAD = randomBytes(24 * 1024 * 1024);
const DIGEST = createHash('sha256').update(PAYLOAD).digest('hex');
let source: Listening<Server>;
let trickle: Listening<Server>;
let mesh: RunningSidecar;

before(async () => {
  // The far end writes the payload as fast as the tunnel takes it, then its FIN.
  source = await startTcpServer((s) => {
    s.on('error', () => s.destroy());
    s.end(PAYLOAD);
  });
  // The same bytes in small pieces: reads stay under the write high-water mark, so a queued
  // write does not pause the relay and the next read must not land in the queued buffer.
  trickle = await startTcpServer((s) => {
    s.on('error', () => s.destroy());
    let at = 0;
    const next = (): void => {
      if (s.destroyed) return;
      for (let i = 0; i < 8 && at < PAYLOAD.length; i++, at += 1000) s.write(PAYLOAD.subarray(at, at + 1000));
      if (at < PAYLOAD.length) setImmediate(next);
      else s.end();
    };
    next();
  });
  mesh = await startSidecar({ services: { source: { endpoints: [source.address] }, trickle: { endpoints: [trickle.address] } } });
});
after(async () => {
  await mesh.stop();
  await source.close();
  await trickle.close();
});

async function download(service: string, readDelayMs: number, startDelayMs = 0): Promise<{ digest: string; bytes: number }> {
  const reply = await connectVia(mesh.outbound, `${service}:9000`);
  assert.equal(reply.status, 200);
  const hash = createHash('sha256').update(reply.rest);
  let bytes = reply.rest.length;
  const sock = reply.socket;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stalled after ${bytes} bytes`)), 60_000);
    sock.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      // A slow reader: the sidecar's writes queue up and its reads must pause or copy.
      if (readDelayMs > 0) {
        sock.pause();
        setTimeout(() => sock.resume(), readDelayMs);
      }
    });
    sock.once('end', () => {
      clearTimeout(timer);
      sock.end();
      resolve();
    });
    sock.once('error', reject);
    // connectVia hands the socket over paused; a late start lets the sidecar's writes queue up.
    setTimeout(() => sock.resume(), startDelayMs);
  });
  return { digest: hash.digest('hex'), bytes };
}

test('a fast client gets every byte of a 24 MiB tunnel download', async () => {
  const r = await download('source', 0);
  assert.equal(r.bytes, PAYLOAD.length);
  assert.equal(r.digest, DIGEST);
});

test('a slow client gets the same bytes in the same order', async () => {
  const r = await download('source', 1);
  assert.equal(r.bytes, PAYLOAD.length);
  assert.equal(r.digest, DIGEST);
});

test('small reads queued behind a client that is not reading yet arrive intact', async () => {
  const r = await download('trickle', 0, 1500);
  assert.equal(r.bytes, PAYLOAD.length);
  assert.equal(r.digest, DIGEST);
});
