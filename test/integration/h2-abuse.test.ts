// HTTP/2 abuse on the outbound listener, with raw frames (a node:http2 client would refuse to
// misbehave like this): rapid reset (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316),
// SETTINGS and PING floods, an HPACK bomb and oversized header lists. Each ends the connection
// and is counted in dreammesh_h2_goaway_total{reason}; after each the sidecar process is alive,
// its RSS stays bounded and it still serves HTTP/2 and HTTP/1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Http2Server } from 'node:http2';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { assertServesBoth } from '../helpers/h2-alive.js';
import { metricSum } from '../helpers/http1-mesh.js';
import { rawH2, frame, T, F, getBlock, literal, indexedLiteral, indexed, type RawH2 } from '../helpers/h2-frames.js';
import { rssMiB } from '../../bench/proc-stats.js';

/** Growth allowed over the RSS after warm-up: far below what any of these attacks could pile up. */
const RSS_BUDGET_MIB = 120;
let upstream: Http2Server;
let mesh: SpawnedSidecar;
let baseRss: number;

before(async () => {
  upstream = createServer();
  upstream.on('stream', (s) => {
    s.on('error', () => {});
    s.respond({ ':status': 200 });
    s.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as { port: number }).port;
  mesh = await spawnSidecar({ services: { svc: { endpoints: [{ address: `127.0.0.1:${port}`, protocol: 'http2' }] } } });
  await serves('warm-up');
  baseRss = rssMiB(mesh.child.pid!);
});

after(async () => {
  await mesh?.stop();
  upstream?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function metrics(): Promise<string> {
  return (await fetch(`${mesh.adminUrl}/metrics`)).text();
}

const serves = (why: string): Promise<void> => assertServesBoth(mesh, why);

async function endedWith(c: RawH2, reason: string, before: number, why: string): Promise<void> {
  assert.ok(await c.waitClosed(5000), `${why}: the connection was ended`);
  c.socket.destroy();
  const m = await metrics();
  assert.equal(metricSum(m, 'dreammesh_h2_goaway_total', { reason }) - before, 1, `${why}: counted with reason="${reason}"`);
  await serves(why);
  const rss = rssMiB(mesh.child.pid!);
  assert.ok(rss - baseRss < RSS_BUDGET_MIB, `${why}: RSS ${rss} MiB, ${rss - baseRss} MiB over the warm-up ${baseRss} MiB`);
}

async function count(reason: string): Promise<number> {
  return metricSum(await metrics(), 'dreammesh_h2_goaway_total', { reason });
}

test('rapid reset: HEADERS then RST_STREAM, thousands of times, ends with GOAWAY ENHANCE_YOUR_CALM', async () => {
  const before = await count('rapid-reset');
  const c = await rawH2(mesh.outbound);
  const bufs: Buffer[] = [];
  for (let i = 0; i < 5000; i++) {
    const id = 2 * i + 1;
    bufs.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, getBlock('svc')));
    bufs.push(frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  }
  c.write(Buffer.concat(bufs));
  await endedWith(c, 'rapid-reset', before, 'rapid reset');
  assert.equal(c.goaway(), 11, 'GOAWAY with ENHANCE_YOUR_CALM');
});

test('CONTINUATION flood: a header block that never ends', async () => {
  const before = await count('continuation');
  const c = await rawH2(mesh.outbound);
  c.write(frame(T.HEADERS, 0, 1, getBlock('svc')));
  for (let i = 0; i < 20_000 && !c.closed(); i++) {
    c.write(frame(T.CONTINUATION, 0, 1, literal(`x-c${i}`, 'v'.repeat(50))));
    if (i % 200 === 0) await sleep(1);
  }
  await endedWith(c, 'continuation', before, 'CONTINUATION flood');
});

for (const [name, f] of [
  ['SETTINGS', frame(T.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]))],
  ['PING', frame(T.PING, 0, 0, Buffer.alloc(8))],
] as const) {
  test(`${name} flood: frames whose acks the client never reads`, async () => {
    const before = await count('flood');
    const c = await rawH2(mesh.outbound);
    c.socket.pause();
    const burst = Buffer.concat(new Array<Buffer>(500).fill(f));
    for (let i = 0; i < 400 && !c.closed(); i++) {
      c.write(burst);
      await sleep(1);
    }
    c.socket.resume();
    await endedWith(c, 'flood', before, `${name} flood`);
  });
}

test('HPACK bomb: one 4 KB dynamic-table entry referenced thousands of times per header block', async () => {
  const before = await count('header-limit');
  const c = await rawH2(mesh.outbound);
  for (let k = 0; k < 20 && !c.closed(); k++) {
    const block = Buffer.concat([getBlock('svc'), k === 0 ? indexedLiteral('x-bomb', 'z'.repeat(4000)) : Buffer.alloc(0), ...new Array<Buffer>(5000).fill(indexed(62))]);
    c.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 2 * k + 1, block.subarray(0, 16_000)));
  }
  await endedWith(c, 'header-limit', before, 'HPACK bomb');
  assert.equal(c.goaway(), 11);
});

test('oversized header lists (over limits.maxHeaderBytes), stream after stream', async () => {
  const before = await count('header-limit');
  const c = await rawH2(mesh.outbound);
  for (let k = 0; k < 20 && !c.closed(); k++) {
    const id = 2 * k + 1;
    const block = Buffer.concat([getBlock('svc'), literal('x-big', 'y'.repeat(20_000))]);
    c.write(frame(T.HEADERS, F.END_STREAM, id, block.subarray(0, 16_000)));
    c.write(frame(T.CONTINUATION, F.END_HEADERS, id, block.subarray(16_000)));
  }
  await endedWith(c, 'header-limit', before, 'oversized header lists');
});

test('one oversized header list alone is refused (RST_STREAM), the connection stays for the next request', async () => {
  const c = await rawH2(mesh.outbound);
  const block = Buffer.concat([getBlock('svc'), literal('x-big', 'y'.repeat(20_000))]);
  c.write(frame(T.HEADERS, F.END_STREAM, 1, block.subarray(0, 16_000)));
  c.write(frame(T.CONTINUATION, F.END_HEADERS, 1, block.subarray(16_000)));
  c.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, getBlock('svc')));
  const end = Date.now() + 3000;
  while (Date.now() < end && !c.frames().some((f) => f.type === T.DATA && f.stream === 3)) await sleep(20);
  assert.ok(
    c.frames().some((f) => f.type === T.RST_STREAM && f.stream === 1),
    'stream 1 refused',
  );
  assert.ok(
    c.frames().some((f) => f.type === T.DATA && f.stream === 3),
    'stream 3 answered',
  );
  assert.equal(c.closed(), false);
  c.socket.destroy();
  await serves('after one oversized header list');
});
