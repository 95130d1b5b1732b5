// Upstream HTTP/2 sessions: calls to one endpoint share multiplexed sessions, the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS is honoured (another session opens when one is full), a
// session that sends GOAWAY gets no new calls, and idle sessions close. The upstream counts its
// connections and the most streams it saw at once on any one of them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Http2Server, type Http2Session, type ServerHttp2Session } from 'node:http2';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';

let upstream: Http2Server;
let mesh: SpawnedSidecar;
const sessions = new Set<ServerHttp2Session>();
let opened = 0;
let maxConcurrentSeen = 0;
const active = new Map<Http2Session, number>();

before(async () => {
  upstream = createServer({ settings: { maxConcurrentStreams: 4 } });
  upstream.on('session', (s) => {
    opened += 1;
    sessions.add(s);
    active.set(s, 0);
    s.on('close', () => sessions.delete(s));
  });
  upstream.on('stream', (st, h) => {
    st.on('error', () => {});
    const s = st.session!;
    const n = active.get(s)! + 1;
    active.set(s, n);
    maxConcurrentSeen = Math.max(maxConcurrentSeen, n);
    st.once('close', () => active.set(s, active.get(s)! - 1));
    if (h[':path'] === '/goaway') s.goaway();
    setTimeout(
      () => {
        if (st.destroyed) return;
        st.respond({ ':status': 200 });
        st.end('ok');
      },
      h[':path'] === '/slow' ? 300 : 0,
    );
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as { port: number }).port;
  mesh = await spawnSidecar({ timeouts: { idleMs: 1500 }, services: { svc: { endpoints: [{ address: `127.0.0.1:${port}`, protocol: 'http2' }] } } });
});

after(async () => {
  await mesh?.stop();
  upstream?.close();
});

function get(path: string, n: number): Promise<string[]> {
  const s = connect(`http://${mesh.outbound}`);
  const calls = Array.from(
    { length: n },
    () =>
      new Promise<string>((resolve) => {
        const r = s.request({ ':path': path, ':authority': 'svc' });
        let b = '';
        r.on('data', (d: Buffer) => (b += d.toString()));
        r.on('end', () => resolve(b));
        r.on('error', (e) => resolve(String(e)));
      }),
  );
  return Promise.all(calls).finally(() => s.close());
}

test('20 concurrent calls, the peer allows 4 streams per connection: every call completes, no session goes over 4', async () => {
  const before = opened;
  const bodies = await get('/slow', 20);
  assert.deepEqual(new Set(bodies), new Set(['ok']));
  assert.ok(maxConcurrentSeen <= 4, `at most 4 streams at once on a session (saw ${maxConcurrentSeen})`);
  assert.ok(opened - before >= 2, `more sessions were opened when one was full (${opened - before})`);
});

test('a session that sent GOAWAY gets no new calls; later calls use another session', async () => {
  const first = await get('/goaway', 1);
  assert.deepEqual(first, ['ok']);
  const before = opened;
  const after = await get('/', 10);
  assert.deepEqual(new Set(after), new Set(['ok']));
  assert.ok(opened >= before, 'calls went on');
});

test('idle upstream sessions close (no PINGs keep them open)', async () => {
  await get('/', 3);
  const end = Date.now() + 8000;
  while (sessions.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.equal(sessions.size, 0, 'every upstream session closed after the idle time');
});
