// Forward-proxy bad input and failure paths over real sockets: malformed CONNECT targets,
// forbidden ports, other schemes, over-long URIs, connect timeouts, resets, half-closes, loops,
// and a count of open file descriptors after many of them (nothing may leak).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { request } from 'undici';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, deadPort, type TestUpstream } from '../helpers/upstream.js';
import { metricValue, rawExchange } from '../helpers/http.js';
import { connectVia, readAll, startTcpServer, startBlackhole, openFds, splitAddress, type Listening } from '../helpers/proxy.js';
import type { Server } from 'node:net';

const exec = promisify(execFile);
let users: TestUpstream;
/** Reads until the client's FIN, then answers with the byte count and closes. */
let counter: Listening<Server>;
/** Accepts, then resets the connection as soon as a byte arrives. */
let resetter: Listening<Server>;
let blackhole: { port: number; close(): void } | null;
let refused: number;
let mesh: RunningSidecar;

async function metrics(): Promise<string> {
  return (await request(`${mesh.adminUrl}/metrics`)).body.text();
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

before(async () => {
  users = await startUpstream('users');
  counter = await startTcpServer(
    (s) => {
      let n = 0;
      s.on('data', (c: Buffer) => (n += c.length));
      s.on('end', () => s.end(`got ${n} bytes`));
    },
    '127.0.0.1',
    { allowHalfOpen: true },
  );
  resetter = await startTcpServer((s) => s.once('data', () => s.resetAndDestroy()));
  blackhole = await startBlackhole();
  refused = await deadPort();
  mesh = await startSidecar({
    // An app, so that the inbound listener exists (the loop test targets it too).
    app: users.address,
    services: { users: { endpoints: [users.address] } },
    timeouts: { connectMs: 300 },
    retries: { attempts: 0 },
    egress: {
      policy: 'registry-only',
      allow: [counter.address, resetter.address, `127.0.0.1:${refused}`, ...(blackhole ? [`127.0.0.1:${blackhole.port}`] : []), '127.0.0.1:8000-8100'],
    },
  });
});
after(async () => {
  await mesh.stop();
  await users.close();
  await counter.close();
  await resetter.close();
  blackhole?.close();
});

test('CONNECT with a malformed authority is a 400', async () => {
  for (const target of ['users', 'bad_host!:443', 'host:99999', 'host:0', '/path', 'http://users:80', 'user@users:80', '[::1:443', 'a..b:80']) {
    const r = await connectVia(mesh.outbound, target);
    assert.equal(r.status, 400, target);
    assert.match(r.headers['x-dreammesh-error'] ?? '', /^MESH_ERR_BAD_(HOST|REQUEST)$/, target);
    r.socket.destroy();
  }
  const m = await metrics();
  assert.ok(metricValue(m, 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'none', outcome: 'bad-request' }) >= 5);
});

test('CONNECT to a port the egress policy forbids is a 403 that names the port', async () => {
  const r = await connectVia(mesh.outbound, '127.0.0.1:8200');
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_EGRESS_DENIED');
  const body = JSON.parse((await readAll(r.socket, r.rest)).data.toString()) as { message: string; destination: string };
  assert.match(body.message, /port 8200 is not allowed/);
  assert.equal(body.destination, '127.0.0.1:8200');
});

test('absolute-form with ftp:// is a 400 MESH_ERR_UNSUPPORTED_SCHEME (curl sends FTP URLs to HTTP proxies this way)', async () => {
  const { stdout } = await exec('curl', ['-s', '-i', '--noproxy', '', '-x', `http://${mesh.outbound}`, 'ftp://users/file.txt']);
  assert.match(stdout, /^HTTP\/1\.1 400/);
  assert.match(stdout, /x-dreammesh-error: MESH_ERR_UNSUPPORTED_SCHEME/i);
  const raw = await rawExchange(mesh.outbound, 'GET gopher://users/ HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400/);
});

test('an over-long URI is a 414, for absolute-form and for CONNECT', async () => {
  const long = 'a'.repeat(9000);
  const abs = await rawExchange(mesh.outbound, `GET http://users/${long} HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n`);
  assert.match(abs, /^HTTP\/1\.1 414/);
  assert.match(abs, /MESH_ERR_URI_TOO_LONG/);
  const c = await connectVia(mesh.outbound, '', { raw: `CONNECT ${'b'.repeat(9000)}.example:443 HTTP/1.1\r\n\r\n` });
  assert.equal(c.status, 414);
  c.socket.destroy();
});

test('a tunnel whose far end never completes the handshake answers 504 after the connect timeout', async (t) => {
  if (blackhole === null) return t.skip('could not make a port whose handshake hangs here (accept queue overflow did not drop SYNs)');
  const started = Date.now();
  const r = await connectVia(mesh.outbound, `127.0.0.1:${blackhole.port}`);
  const took = Date.now() - started;
  assert.equal(r.status, 504);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_UPSTREAM_CONNECT_TIMEOUT');
  assert.ok(took >= 250 && took < 3000, `answered after ${took} ms (connectMs 300)`);
  r.socket.destroy();
  assert.ok(metricValue(await metrics(), 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'egress', outcome: 'connect-timeout' }) >= 1);
});

test('a refused far end is a 503 MESH_ERR_UPSTREAM_REFUSED', async () => {
  const r = await connectVia(mesh.outbound, `127.0.0.1:${refused}`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_UPSTREAM_REFUSED');
  r.socket.destroy();
});

test('a far end that resets: absolute-form answers 502; an open tunnel is cut and counted', async () => {
  const abs = await rawExchange(mesh.outbound, `GET http://${resetter.address}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.match(abs, /^HTTP\/1\.1 502/);
  assert.match(abs, /x-dreammesh-error: MESH_ERR_UPSTREAM_RESET/);
  const before = metricValue(await metrics(), 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'egress', outcome: 'upstream-reset' });
  const c = await connectVia(mesh.outbound, resetter.address);
  assert.equal(c.status, 200);
  c.socket.write('hello');
  const got = await readAll(c.socket, c.rest);
  assert.equal(got.data.length, 0);
  assert.ok(await until(async () => metricValue(await metrics(), 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'egress', outcome: 'upstream-reset' }) === before + 1));
});

test('a client that half-closes still receives the whole response through the tunnel', async () => {
  const c = await connectVia(mesh.outbound, counter.address);
  assert.equal(c.status, 200);
  const payload = Buffer.alloc(256 * 1024, 7);
  c.socket.end(payload); // FIN after the payload: the answer comes only after it
  const got = await readAll(c.socket, c.rest);
  assert.equal(got.data.toString(), `got ${payload.length} bytes`);
  assert.equal(got.ended, true);
});

test('a far end that half-closes first still receives what the client sends afterwards', async () => {
  let received = '';
  let resolveDone: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const talker = await startTcpServer(
    (s) => {
      s.end('bye'); // server-first FIN
      s.on('data', (c: Buffer) => (received += c.toString()));
      s.on('end', () => resolveDone());
    },
    '127.0.0.1',
    { allowHalfOpen: true },
  );
  const open = await startSidecar({ egress: { policy: 'allow-any' } });
  try {
    const c = await connectVia(open.outbound, talker.address);
    assert.equal(c.status, 200);
    const chunks: Buffer[] = [c.rest];
    c.socket.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise<void>((r) => c.socket.once('end', () => r()));
    c.socket.resume();
    await ended;
    assert.equal(Buffer.concat(chunks).toString(), 'bye');
    c.socket.end('late data');
    await done;
    assert.equal(received, 'late data');
  } finally {
    await open.stop();
    await talker.close();
  }
});

test('bytes and a FIN sent right after CONNECT, before the 200, all reach the far end', async () => {
  const { host, port } = splitAddress(mesh.outbound);
  const { connect } = await import('node:net');
  const s = connect({ host, port, allowHalfOpen: true });
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(`CONNECT ${counter.address} HTTP/1.1\r\nHost: ${counter.address}\r\n\r\n`);
  await new Promise((r) => setImmediate(r));
  s.end(Buffer.alloc(5000, 1)); // early data in its own segment, then FIN
  const got = (await readAll(s)).data.toString('latin1');
  assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n\r\ngot 5000 bytes$/);
});

test('loops: CONNECT or absolute-form to our own listeners, and a CONNECT that already passed (Via), are 508', async () => {
  const { port } = splitAddress(mesh.outbound);
  const adminPort = splitAddress(mesh.admin).port;
  for (const target of [mesh.outbound, `localhost:${port}`, `127.0.0.1:${adminPort}`, mesh.inbound]) {
    const r = await connectVia(mesh.outbound, target);
    assert.equal(r.status, 508, target);
    assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_LOOP', target);
    r.socket.destroy();
  }
  const via = await connectVia(mesh.outbound, counter.address, { headers: { via: `1.1 ${mesh.sidecar.via}` } });
  assert.equal(via.status, 508);
  via.socket.destroy();
  const abs = await rawExchange(mesh.outbound, `GET http://localhost:${port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.match(abs, /^HTTP\/1\.1 508/);
  assert.ok(metricValue(await metrics(), 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'none', outcome: 'loop' }) >= 5);
});

test('a mesh service whose endpoint is this sidecar is a loop, not a circle', async () => {
  const port = await deadPort();
  const loopy = await startSidecar({ listeners: { outbound: `127.0.0.1:${port}` }, services: { self: { endpoints: [`127.0.0.1:${port}`] } } });
  try {
    // CONNECT: caught after connecting, by the peer address of the upstream socket.
    const r = await connectVia(loopy.outbound, 'self:80');
    assert.equal(r.status, 508);
    assert.equal(r.headers['x-dreammesh-error'], 'MESH_ERR_LOOP');
    r.socket.destroy();
    // Absolute-form: the second pass sees our own Via and stops there.
    const abs = await rawExchange(loopy.outbound, 'GET http://self/ HTTP/1.1\r\nHost: self\r\nConnection: close\r\n\r\n');
    assert.match(abs, /^HTTP\/1\.1 508/);
  } finally {
    await loopy.stop();
  }
});

test('tunnels are access-logged: one line per CONNECT, with its outcome', async () => {
  const { mkdtemp, readFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'dm-tunnel-log-'));
  const file = join(dir, 'access.log');
  const logged = await startSidecar({ accessLog: { enabled: true, path: file }, services: { users: { endpoints: [users.address] } } });
  try {
    const ok = await connectVia(logged.outbound, 'users:80');
    ok.socket.end('GET / HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n');
    await readAll(ok.socket, ok.rest);
    const denied = await connectVia(logged.outbound, 'elsewhere.example:443');
    await readAll(denied.socket, denied.rest);
    await until(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length >= 2);
  } finally {
    await logged.stop();
  }
  const lines = (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  await rm(dir, { recursive: true, force: true });
  const svc = lines.find((l) => l.authority === 'users:80')!;
  assert.equal(svc.method, 'CONNECT');
  assert.equal(svc.mode, 'proxy');
  assert.equal(svc.service, 'users');
  assert.equal(svc.status, 200);
  assert.equal(svc.endpoint, users.address);
  const no = lines.find((l) => l.authority === 'elsewhere.example:443')!;
  assert.equal(no.status, 403);
  assert.equal(no.error, 'MESH_ERR_EGRESS_DENIED');
});

test('a tunnel with no bytes either way for timeouts.idleMs is closed and counted as idle-timeout', async () => {
  const idle = await startSidecar({ timeouts: { idleMs: 300 }, egress: { policy: 'allow-any' } });
  try {
    const c = await connectVia(idle.outbound, counter.address);
    assert.equal(c.status, 200);
    const started = Date.now();
    const got = await readAll(c.socket, c.rest, 5000);
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
    assert.equal(got.data.length, 0);
    const m = await (await request(`${idle.adminUrl}/metrics`)).body.text();
    assert.equal(metricValue(m, 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'egress', outcome: 'idle-timeout' }), 1);
  } finally {
    await idle.stop();
  }
});

test('many failed and finished tunnels leave no file descriptors or tunnels behind', async () => {
  const settle = async (): Promise<void> => {
    await until(async () => metricValue(await metrics(), 'dreammesh_tunnels_active', { mode: 'proxy' }) === 0);
  };
  // Warm up once so lazily opened things (metrics, pools) are not counted as leaks.
  const warm = await connectVia(mesh.outbound, counter.address);
  warm.socket.end('x');
  await readAll(warm.socket, warm.rest);
  await settle();
  const fds0 = await openFds();
  const rounds = 30;
  for (let i = 0; i < rounds; i++) {
    const attempts: Promise<void>[] = [];
    const one = async (target: string, action: (s: Socket, rest: Buffer) => Promise<unknown>): Promise<void> => {
      const r = await connectVia(mesh.outbound, target);
      await action(r.socket, r.rest);
      r.socket.destroy();
    };
    attempts.push(one('bad_host!:1', (s, rest) => readAll(s, rest)));
    attempts.push(one('127.0.0.1:8200', (s, rest) => readAll(s, rest)));
    attempts.push(one(`127.0.0.1:${refused}`, (s, rest) => readAll(s, rest)));
    attempts.push(one(mesh.outbound, (s, rest) => readAll(s, rest)));
    attempts.push(one(counter.address, (s, rest) => (s.end('ping'), readAll(s, rest))));
    attempts.push(one(resetter.address, (s, rest) => (s.write('x'), readAll(s, rest))));
    attempts.push(one('users:80', (s, rest) => (s.end('GET / HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n'), readAll(s, rest))));
    // A client that goes away in the middle of an open tunnel.
    attempts.push(one(counter.address, async (s) => s.destroy()));
    await Promise.all(attempts);
  }
  if (blackhole !== null) {
    // Clients that give up while the sidecar is still connecting.
    const { host, port } = splitAddress(mesh.outbound);
    const { connect } = await import('node:net');
    await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect({ host, port }, () => {
              s.write(`CONNECT 127.0.0.1:${blackhole!.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
              setTimeout(() => {
                s.destroy();
                resolve();
              }, 50);
            });
            s.on('error', () => resolve());
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 400)); // the pending connects time out (connectMs 300)
  }
  await settle();
  assert.equal(metricValue(await metrics(), 'dreammesh_tunnels_active', { mode: 'proxy' }), 0);
  const leaked = await until(async () => (await openFds()) <= fds0 + 2, 5000);
  assert.ok(leaked, `open fds went from ${fds0} to ${await openFds()} after ${rounds * 8} tunnels`);
});
