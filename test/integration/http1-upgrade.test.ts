// Expect: 100-continue, WebSocket upgrades and h2c through every HTTP entry (explicit, forward
// proxy, inbound) of a sidecar process, on raw sockets and with the `ws` client:
// - Expect is relayed; the client gets the upstream's 100 Continue, then the final response;
// - Upgrade: websocket → 101 relayed, then an echo of several text and binary messages, counted
//   in dreammesh_upgrades_total{mode,service,outcome};
// - an upgrade the upstream refuses (400 or 200) reaches the client and the connection keeps
//   serving HTTP; an upstream that closes right after its 101 closes the client; process alive;
// - Upgrade: h2c is stripped: the upstream gets a plain HTTP/1.1 request and the client its 200.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { meshPerSuite, tagger, ENTRY_NAMES, finals, describeResult, metricSum, via, type Mesh, type SocketReport, type Entry } from '../helpers/http1-mesh.js';
import { header } from '../helpers/http1-wire.js';
import { rawWsSession, wsHeaders, wsKey, wsAccept, OP } from '../helpers/ws-frames.js';
import { pattern } from '../helpers/http1-upstream.js';

let mesh: Mesh;
let baseline: SocketReport;
const tag = tagger();

meshPerSuite((m, b) => {
  mesh = m;
  baseline = b;
});

function bodyJson(m: { body: Buffer } | undefined): { target?: string; bodyBytes?: number } {
  try {
    return JSON.parse(m?.body.toString() ?? '') as { target?: string };
  } catch {
    return {};
  }
}

async function upgrades(e: Entry): Promise<number> {
  const m = await mesh.metrics();
  return e.name === 'inbound' ? metricSum(m, 'dreammesh_upgrades_total') : metricSum(m, 'dreammesh_upgrades_total', { mode: e.name, service: 'svc' });
}

/** A `ws` client through explicit (Host: svc) or inbound; resolves with the echoes. */
function wsEcho(e: Entry, messages: (string | Buffer)[]): Promise<{ echoes: (string | Buffer)[]; error?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${e.address}/ws/lib`, { headers: e.hostOverride ? { host: e.hostOverride } : {}, handshakeTimeout: 4000 });
    const echoes: (string | Buffer)[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ echoes, error: 'timeout' });
    }, 6000);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve({ echoes, error: `unexpected response ${res.statusCode}` });
      ws.terminate();
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      resolve({ echoes, error: String(err) });
    });
    ws.on('open', () => ws.send(messages[0]!));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      echoes.push(isBinary ? data : data.toString());
      if (echoes.length < messages.length) ws.send(messages[echoes.length]!);
      else ws.close(1000);
    });
    ws.on('close', () => {
      clearTimeout(timer);
      resolve({ echoes });
    });
  });
}

for (const name of ENTRY_NAMES) {
  describe(`${name} entry`, () => {
    const e = (): Entry => mesh.entry(name);

    test("Expect: 100-continue: the upstream's 100 arrives before the body is sent, then the final 200", async () => {
      const t = tag('expect');
      const body = 'b'.repeat(1000);
      const r = await via(
        e(),
        [
          {
            write: e().head('POST', `/${t}`, [
              ['Content-Length', '1000'],
              ['Expect', '100-continue'],
            ]),
          },
          { awaitResponses: 1, ms: 3000 },
          { write: body },
        ],
        { untilResponses: 1 },
      );
      assert.equal(r.responses[0]?.status, 100, `a 100 Continue first: ${describeResult(r)}`);
      const f = finals(r)[0];
      assert.equal(f?.status, 200, describeResult(r));
      assert.equal(bodyJson(f).bodyBytes, 1000);
      assert.equal(header(r.responses[0], 'x-interim'), 'upstream', `the upstream's own 100, relayed (not one the sidecar made up): ${describeResult(r)}`);
      assert.match(header(mesh.seenWith(t)[0]!, 'expect') ?? '', /100-continue/i, 'Expect reached the upstream');
    });

    test('Expect: 100-continue with the body sent at once (no wait): 100 then 200, never a 502', async () => {
      const t = tag('expect-eager');
      const r = await via(
        e(),
        [
          {
            write:
              e().head('PUT', `/${t}`, [
                ['Content-Length', '5'],
                ['Expect', '100-continue'],
              ]) + 'hello',
          },
        ],
        { untilResponses: 1 },
      );
      const f = finals(r)[0];
      assert.equal(f?.status, 200, describeResult(r));
      assert.equal(bodyJson(f).bodyBytes, 5);
      assert.ok(r.responses.every((m) => m.status !== 502));
    });

    test('Expect with the body sent at once, and a GET pipelined behind it: 100, 200, 200 in order', async () => {
      const t = tag('expect-pipe');
      const r = await via(
        e(),
        [
          {
            write:
              e().head('POST', `/${t}/1`, [
                ['Content-Length', '5'],
                ['Expect', '100-continue'],
              ]) +
              'hello' +
              e().head('GET', `/${t}/2`),
          },
        ],
        { untilResponses: 2 },
      );
      const f = finals(r);
      assert.deepEqual(
        f.map((m) => m.status),
        [200, 200],
        describeResult(r),
      );
      assert.deepEqual(
        f.map((m) => bodyJson(m).target?.replace(/^http:\/\/svc/, '')),
        [`/${t}/1`, `/${t}/2`],
      );
      assert.equal(bodyJson(f[0]).bodyBytes, 5);
    });

    test('WebSocket on a raw socket: 101 relayed, then text and binary messages echo both ways; counted', async () => {
      const before = await upgrades(e());
      const key = wsKey();
      const big = Buffer.alloc(100_000, 7);
      const msgs = [
        { opcode: OP.text, payload: 'hello' },
        { opcode: OP.binary, payload: Buffer.from([0, 1, 2, 255]) },
        { opcode: OP.binary, payload: big },
        { opcode: OP.text, payload: 'ünïcødé ✓' },
        { opcode: OP.text, payload: 'bye' },
      ];
      const s = await rawWsSession(e().address, e().head('GET', '/ws/raw', wsHeaders(key)), msgs);
      assert.equal(s.status, 101, `handshake: ${JSON.stringify(s.responseHead)} ${s.error ?? ''}`);
      assert.match(s.responseHead, new RegExp(`sec-websocket-accept: ${wsAccept(key).replace(/[+/]/g, '\\$&')}`, 'i'));
      const echoes = s.frames.filter((f) => f.opcode === OP.text || f.opcode === OP.binary);
      assert.equal(echoes.length, msgs.length, `echoes: ${echoes.length} of ${msgs.length}`);
      for (let i = 0; i < msgs.length; i++) {
        assert.equal(echoes[i]!.opcode, msgs[i]!.opcode);
        assert.ok(echoes[i]!.payload.equals(Buffer.from(msgs[i]!.payload)), `message ${i} echoed intact`);
      }
      assert.ok(
        s.frames.some((f) => f.opcode === OP.close),
        'the close handshake went through',
      );
      await mesh.alive(e());
      let now = before;
      for (let i = 0; i < 20 && now < before + 1; i++) {
        await new Promise((r) => setTimeout(r, 100));
        now = await upgrades(e());
      }
      assert.equal(now, before + 1, 'dreammesh_upgrades_total counted this upgrade');
    });

    if (name !== 'proxy') {
      test('WebSocket with the ws client library: several text and binary messages echo', async () => {
        const msgs: (string | Buffer)[] = ['one', Buffer.from([9, 8, 7]), 'three', Buffer.alloc(70_000, 1), 'done'];
        const r = await wsEcho(e(), msgs);
        assert.equal(r.error, undefined, r.error);
        assert.equal(r.echoes.length, msgs.length);
        for (let i = 0; i < msgs.length; i++) {
          if (typeof msgs[i] === 'string') assert.equal(r.echoes[i], msgs[i]);
          else assert.ok(Buffer.isBuffer(r.echoes[i]) && (r.echoes[i] as Buffer).equals(msgs[i] as Buffer), `binary message ${i}`);
        }
        await mesh.alive(e());
      });
    }

    for (const [label, path, status] of [
      ['400', '/upgrade-400', 400],
      ['200', '/refused-200', 200],
    ] as const) {
      test(`an upgrade the upstream refuses with ${label} reaches the client and the connection keeps serving HTTP`, async () => {
        const t = tag('refused');
        const r = await via(e(), [{ write: e().head('GET', `${path}?${t}`, wsHeaders(wsKey())) }, { awaitResponses: 1 }, { write: e().head('GET', `/${t}/after`) }], { untilResponses: 2, ms: 5000 });
        const f = finals(r);
        assert.equal(f[0]?.status, status, describeResult(r));
        assert.equal(f[1]?.status, 200, `the same connection serves the next request: ${describeResult(r)}`);
        assert.equal(bodyJson(f[1]).target?.replace(/^http:\/\/svc/, ''), `/${t}/after`);
        await mesh.alive(e());
      });
    }

    test('a refused upgrade with the next request pipelined in the same write: both answered, in order', async () => {
      const t = tag('refusedpipe');
      const r = await via(e(), [{ write: e().head('GET', `/upgrade-400?${t}`, wsHeaders(wsKey())) + e().head('GET', `/${t}/next`) }], { untilResponses: 2, ms: 5000 });
      const f = finals(r);
      assert.deepEqual(
        f.map((m) => m.status),
        [400, 200],
        describeResult(r),
      );
      assert.equal(bodyJson(f[1]).target?.replace(/^http:\/\/svc/, ''), `/${t}/next`);
      await mesh.alive(e());
    });

    test('an upstream that closes right after its 101: the client sees the 101 and a close; process alive', async () => {
      const s = await rawWsSession(e().address, e().head('GET', '/ws-close', wsHeaders(wsKey())), [{ opcode: OP.text, payload: 'anyone?' }], 4000);
      assert.equal(s.status, 101, JSON.stringify(s.responseHead));
      assert.ok(s.closed, 'the client connection was closed');
      await mesh.alive(e(), 'after an upstream closed right after 101');
    });

    test('Upgrade: h2c with HTTP2-Settings is stripped: a plain HTTP/1.1 request upstream, a 200 to the client', async () => {
      const t = tag('h2c');
      const r = await via(
        e(),
        [
          {
            write: e().head('GET', `/${t}`, [
              ['Connection', 'Upgrade, HTTP2-Settings'],
              ['Upgrade', 'h2c'],
              ['HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA'],
            ]),
          },
          { awaitResponses: 1 },
          { write: e().head('GET', `/${t}/after`) },
        ],
        { untilResponses: 2 },
      );
      const f = finals(r);
      assert.equal(f[0]?.status, 200, describeResult(r));
      assert.equal(f[1]?.status, 200, `the connection stays HTTP/1.1: ${describeResult(r)}`);
      const seen = mesh.seenWith(t)[0];
      assert.ok(seen, 'the upstream saw the request');
      assert.equal(header(seen, 'upgrade'), undefined, seen.head);
      assert.equal(header(seen, 'http2-settings'), undefined, seen.head);
      assert.doesNotMatch(header(seen, 'connection') ?? '', /upgrade|http2-settings/i, seen.head);
      assert.match(seen.head, /^GET \S+ HTTP\/1\.1\r\n/);
    });
  });
}

test('12 concurrent WebSocket sessions through every entry, binary messages up to 2 MiB: every echo byte-exact', async () => {
  const sessions = await Promise.all(
    Array.from({ length: 12 }, async (_, i) => {
      const e = mesh.entries[i % 3]!;
      const msgs = [7, 70_000, 700_000, i % 4 === 0 ? 2 * 1024 * 1024 : 300_000].map((n, k) => ({ opcode: OP.binary, payload: pattern(n + i * 13 + k).subarray(i) }));
      const s = await rawWsSession(e.address, e.head('GET', `/ws/many/${i}`, wsHeaders(wsKey())), msgs, 20_000);
      const echoes = s.frames.filter((f) => f.opcode === OP.binary);
      const ok = s.status === 101 && echoes.length === msgs.length && echoes.every((f, k) => f.payload.equals(msgs[k]!.payload));
      return ok
        ? 'ok'
        : `${e.name} session ${i}: status ${s.status}, ${echoes.length} echoes, ${echoes.map((f, k) => (f.payload.equals(msgs[k]!.payload) ? 'same' : `differs (${f.payload.length} vs ${msgs[k]!.payload.length})`)).join(', ')} ${s.error ?? ''}`;
    }),
  );
  assert.deepEqual(
    sessions.filter((x) => x !== 'ok'),
    [],
  );
  await mesh.alive();
});

test('no socket is left behind after upgrades, refusals and closes', async () => {
  await mesh.alive();
  await mesh.noLeaks(baseline, 'after the upgrade tests');
});
