// Bad input at every HTTP/2 entry of the outbound listener: explicit (the preface on a fresh
// connection) and proxy (the preface inside a CONNECT tunnel to a service). Garbage after the
// preface, a preface and then nothing, half a preface, frames on the wrong stream, HTTP/1 after
// the preface, a client that resets mid-response, an upstream that dies mid-call. After each:
// the process is alive and serves HTTP/2 and HTTP/1. (Transparent entries: test/e2e.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect, createServer, type Http2Server } from 'node:http2';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { assertServesBoth } from '../helpers/h2-alive.js';
import { PREFACE, frame, T, F, getBlock } from '../helpers/h2-frames.js';

let upstream: Http2Server;
let mesh: SpawnedSidecar;

before(async () => {
  upstream = createServer();
  upstream.on('stream', (s, h) => {
    s.on('error', () => {});
    if (h[':path'] === '/slow') {
      s.respond({ ':status': 200 });
      s.write('part');
      return; // never ends: the client resets it
    }
    if (h[':path'] === '/hang') return; // never answers
    if (h[':path'] === '/die') {
      s.respond({ ':status': 200 });
      s.write('part');
      setTimeout(() => s.session?.destroy(), 50);
      return;
    }
    s.respond({ ':status': 200 });
    s.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as { port: number }).port;
  mesh = await spawnSidecar({ timeouts: { requestHeaderMs: 1000, downstreamIdleMs: 2000, requestMs: 500 }, services: { svc: { endpoints: [{ address: `127.0.0.1:${port}`, protocol: 'http2' }] } } });
});

after(async () => {
  await mesh?.stop();
  upstream?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const serves = (why: string): Promise<void> => assertServesBoth(mesh, why);

/** Opens a raw connection at an entry: explicit (direct) or proxy (CONNECT svc:80 first). */
async function open(entry: 'explicit' | 'proxy'): Promise<{ socket: Socket; data: () => Buffer; closed: () => Promise<boolean> }> {
  const [host, port] = mesh.outbound.split(':');
  const socket = netConnect({ host: host!, port: Number(port) });
  const chunks: Buffer[] = [];
  let isClosed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  socket.on('close', () => (isClosed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  if (entry === 'proxy') {
    socket.write('CONNECT svc:80 HTTP/1.1\r\nHost: svc:80\r\n\r\n');
    const end = Date.now() + 3000;
    while (!Buffer.concat(chunks).includes('\r\n\r\n') && Date.now() < end) await sleep(10);
    assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 200/);
    chunks.length = 0;
  }
  return {
    socket,
    data: () => Buffer.concat(chunks),
    closed: async () => {
      const end = Date.now() + 5000;
      while (!isClosed && Date.now() < end) await sleep(20);
      return isClosed;
    },
  };
}

const CASES: [string, (s: Socket) => Promise<void> | void][] = [
  ['garbage after the preface', (s) => void s.write(Buffer.concat([PREFACE, Buffer.from('\x00\x00\x04\xff\xff\xff\xff\xffnot a frame at all'.repeat(20), 'latin1')]))],
  ['the preface, then the client closes', (s) => void s.end(PREFACE)],
  ['half a preface, then the client closes', (s) => void s.end(PREFACE.subarray(0, 10))],
  ['HTTP/1 after the preface', (s) => void s.write(Buffer.concat([PREFACE, Buffer.from('GET / HTTP/1.1\r\nHost: svc\r\n\r\n')]))],
  ['DATA on stream 0 and HEADERS on an even stream', (s) => void s.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), frame(T.DATA, 0, 0, Buffer.from('x')), frame(T.HEADERS, F.END_HEADERS, 2, getBlock('svc'))]))],
  ['a HEADERS block that is not HPACK', (s) => void s.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))]))],
  ['a 16 MB frame length', (s) => void s.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1])]))],
];

for (const entry of ['explicit', 'proxy'] as const) {
  for (const [name, send] of CASES) {
    test(`${entry}: ${name} ends that connection only`, async () => {
      const c = await open(entry);
      await send(c.socket);
      assert.ok(await c.closed(), `${name}: the sidecar closed the connection`);
      await serves(`${entry}: ${name}`);
    });
  }
}

test('explicit: a preface and then silence is closed after the idle timeout', async () => {
  const c = await open('explicit');
  c.socket.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
  assert.ok(await c.closed(), 'closed by downstreamIdleMs');
  await serves('idle preface');
});

test('explicit: half a preface and then silence is answered 408 after requestHeaderMs', async () => {
  const c = await open('explicit');
  c.socket.write(PREFACE.subarray(0, 8));
  assert.ok(await c.closed());
  assert.match(c.data().toString('latin1'), /^HTTP\/1\.1 408 /);
  await serves('half preface, silent');
});

test('a client that resets a streaming call, and an upstream that dies mid-response', async () => {
  const s = connect(`http://${mesh.outbound}`);
  s.on('error', () => {});
  for (let i = 0; i < 50; i++) {
    const r = s.request({ ':path': '/slow', ':authority': 'svc' });
    r.on('error', () => {});
    await new Promise<void>((resolve) => r.once('data', () => resolve()));
    r.close(8);
  }
  const dying = s.request({ ':path': '/die', ':authority': 'svc' });
  const outcome = await new Promise<string>((resolve) => {
    dying.on('data', () => {});
    dying.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
    dying.on('close', () => resolve(`closed ${dying.rstCode}`));
  });
  assert.notEqual(outcome, 'closed 0', 'a cut upstream is not a clean end');
  s.close();
  await serves('after resets and a dying upstream');
});

test('an upstream that never answers a plain HTTP/2 request: 504 after timeouts.requestMs', async () => {
  const s = connect(`http://${mesh.outbound}`);
  s.on('error', () => {});
  const started = Date.now();
  const [status, code] = await new Promise<[number, string]>((resolve, reject) => {
    const r = s.request({ ':path': '/hang', ':authority': 'svc' });
    r.on('response', (h) => resolve([Number(h[':status']), String(h['x-dreammesh-error'])]));
    r.on('error', reject);
    r.resume();
  });
  s.close();
  assert.equal(status, 504);
  assert.equal(code, 'MESH_ERR_UPSTREAM_TIMEOUT');
  assert.ok(Date.now() - started < 3000);
  await serves('after a request timeout');
});

test('explicit: a preface split across writes is still HTTP/2', async () => {
  const c = await open('explicit');
  c.socket.write(PREFACE.subarray(0, 7));
  await sleep(100);
  c.socket.write(Buffer.concat([PREFACE.subarray(7), frame(T.SETTINGS, 0, 0), frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, getBlock('svc'))]));
  const end = Date.now() + 3000;
  while (!c.data().includes('ok') && Date.now() < end) await sleep(20);
  assert.ok(c.data().includes('ok'), 'the request on stream 1 was answered');
  assert.notEqual(c.data().subarray(0, 4).toString('latin1'), 'HTTP', 'no HTTP/1 answer');
  c.socket.destroy();
});
