// Upstream connection pooling and response relaying of the HTTP/1 engine, with one endpoint (so a
// wrongly reused pooled connection would serve the next request), at every entry (explicit,
// forward proxy, inbound) of a sidecar process:
// - a pooled connection is reused only after a complete response, never after a framing doubt
//   (bytes after the response: HTTP desync), nor after HTTP/1.0 or close-delimited responses;
// - close-delimited responses, HTTP/1.0 responses and a status line without reason phrase arrive whole;
// - hop-by-hop headers (Connection-listed, Keep-Alive, Proxy-Connection) are removed both ways;
// - an upstream that answers before the request body is in: the answer reaches the client;
// - Expect: an upstream that refuses at once (no 100) → its answer, and that connection (whose
//   request body never came) is not reused; an upstream that ignores Expect → curl's upload works;
// - a chunked event stream is passed on event by event, not buffered;
// - keep-alive upstream connections are reused (a handful for 60 sequential requests);
// - 200 clients that connect, write and vanish at once leave nothing behind.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMesh, meshPerSuite, tagger, ENTRY_NAMES, finals, describeResult, via, type Mesh, type SocketReport, type Entry } from '../helpers/http1-mesh.js';
import { connect } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { header, hostPort } from '../helpers/http1-wire.js';
import { curl } from '../helpers/http1-clients.js';
import { pattern } from '../helpers/http1-upstream.js';

let mesh: Mesh;
let baseline: SocketReport;
const tag = tagger();

meshPerSuite(
  (m, b) => {
    mesh = m;
    baseline = b;
  },
  { endpoints: 1 },
);

function target(m: { body: Buffer } | undefined): string | undefined {
  try {
    return (JSON.parse(m?.body.toString() ?? '') as { target?: string }).target?.replace(/^http:\/\/svc/, '');
  } catch {
    return undefined;
  }
}

for (const name of ENTRY_NAMES) {
  describe(`${name} entry`, () => {
    const e = (): Entry => mesh.entry(name);

    test('bytes after a complete response (HTTP desync): the pooled connection is not reused; later requests get their own responses', async () => {
      const r = await via(e(), [{ write: e().head('GET', '/desync') }], { untilResponses: 1 });
      const f = finals(r)[0];
      assert.ok(f?.status === 200 || f?.status === 502, describeResult(r));
      if (f?.status === 200) assert.equal(f.body.toString(), 'ok');
      assert.ok(!r.data.toString('latin1').includes('EVIL'), `the extra bytes reached the client: ${describeResult(r)}`);
      for (let i = 0; i < 5; i++) {
        const t = tag('afterdesync');
        const n = await via(e(), [{ write: e().head('GET', `/${t}`) }], { untilResponses: 1 });
        assert.equal(finals(n)[0]?.status, 200, describeResult(n));
        assert.equal(target(finals(n)[0]), `/${t}`, `request ${i} after the desync got someone else's response: ${describeResult(n)}`);
      }
    });

    test('extra bytes arriving while the connection idles in the pool: it is dropped, never read as the next response', async () => {
      const r = await via(e(), [{ write: e().head('GET', '/desync-late') }], { untilResponses: 1 });
      assert.equal(finals(r)[0]?.body.toString(), 'ok', describeResult(r));
      await new Promise((res) => setTimeout(res, 150));
      for (let i = 0; i < 3; i++) {
        const t = tag('afterlate');
        const n = await via(e(), [{ write: e().head('GET', `/${t}`) }], { untilResponses: 1 });
        assert.equal(target(finals(n)[0]), `/${t}`, `request ${i}: ${describeResult(n)}`);
      }
    });

    test('a client gone mid-download or mid-upload: that upstream connection is not reused; later requests get their own responses', async () => {
      const { host, port } = hostPort(e().address);
      await new Promise<void>((resolve) => {
        const s = connect({ host, port });
        s.on('error', () => {});
        let got = 0;
        s.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 100_000) {
            s.destroy();
            resolve();
          }
        });
        s.write(e().head('GET', `/big/${16 * 1024 * 1024}`));
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 3000);
      });
      await via(e(), [{ write: e().head('POST', '/half-upload', [['Content-Length', '100000']]) + 'u'.repeat(5000) }, { wait: 100 }, { destroy: true }]);
      await new Promise((res) => setTimeout(res, 100));
      for (let i = 0; i < 5; i++) {
        const t = tag('afterabort');
        const n = await via(e(), [{ write: e().head('GET', `/${t}`) }], { untilResponses: 1, ms: 3000 });
        assert.equal(finals(n)[0]?.status, 200, `request ${i}: ${describeResult(n)}`);
        assert.equal(target(finals(n)[0]), `/${t}`, `request ${i}: ${describeResult(n)}`);
      }
      assert.equal(mesh.seenWith('/half-upload').length, 0, 'the upstream never saw the half upload as a complete request');
    });

    test('an upstream that answers 413 and closes before the request body is in: the client gets the 413, never a 502', async () => {
      const r = await via(e(), [{ write: e().head('POST', '/early-close', [['Content-Length', '300000']]) + 'v'.repeat(2000) }, { awaitResponses: 1, ms: 3000 }, { write: 'v'.repeat(298_000) }], {
        ms: 4000,
        untilResponses: 1,
      });
      const f = finals(r)[0];
      assert.equal(f?.status, 413, describeResult(r));
      assert.equal(f?.body.toString(), 'too large, bye');
      await mesh.alive(e());
    });

    test('a response delimited by the upstream closing arrives whole; the connection ends cleanly or stays usable', async () => {
      const t = tag('afterclose');
      const r = await via(e(), [{ write: e().head('GET', '/until-close') }, { awaitResponses: 1, ms: 3000 }, { wait: 300 }, { write: e().head('GET', `/${t}`) }], { ms: 4000 });
      const f = finals(r);
      assert.equal(f[0]?.status, 200, describeResult(r));
      const chunkedOrLength = header(f[0], 'transfer-encoding') !== undefined || header(f[0], 'content-length') !== undefined;
      if (chunkedOrLength) {
        assert.equal(f[0]?.body.toString(), 'body delimited by close', describeResult(r));
        if (!r.closed) assert.equal(target(f[1]), `/${t}`, describeResult(r));
      } else {
        assert.ok(r.closed, 'relayed without framing: the client connection must close');
        assert.ok(f[0].body.toString().startsWith('body delimited by close'), describeResult(r));
      }
      await mesh.alive(e());
    });

    test('responses arriving in 3-byte and 100-byte pieces, pipelined with others: each intact and in order', async () => {
      const t = tag('dribbled');
      const bytes = e().head('GET', '/dribble-resp/5000') + e().head('GET', `/${t}/1`) + e().head('GET', '/dribble-resp/777') + e().head('GET', `/${t}/2`);
      const r = await via(e(), [{ write: bytes }], { untilResponses: 4, ms: 8000 });
      const f = finals(r);
      assert.deepEqual(
        f.map((m) => m.status),
        [200, 200, 200, 200],
        describeResult(r),
      );
      assert.ok(f[0]!.body.equals(pattern(5000)), 'first dribbled body intact');
      assert.ok(f[2]!.body.equals(pattern(777)), 'second dribbled body intact');
      assert.deepEqual([target(f[1]), target(f[3])], [`/${t}/1`, `/${t}/2`]);
    });

    test('an HTTP/1.0 response and a status line without reason phrase are relayed', async () => {
      const r = await via(e(), [{ write: e().head('GET', '/http10') }], { untilResponses: 1 });
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      assert.equal(finals(r)[0]?.body.toString(), 'old ok');
      const n = await via(e(), [{ write: e().head('GET', '/no-reason') }], { untilResponses: 1 });
      assert.equal(finals(n)[0]?.status, 200, describeResult(n));
      assert.equal(finals(n)[0]?.body.toString(), 'ok');
      await mesh.alive(e());
    });

    test('hop-by-hop headers are removed both ways (Connection-listed, Keep-Alive, Proxy-Connection); Via is added', async () => {
      const r = await via(
        e(),
        [
          {
            write: e().head('GET', '/hop', [
              ['Connection', 'keep-alive, x-private'],
              ['X-Private', 'secret'],
              ['Keep-Alive', 'timeout=5'],
              ['Proxy-Connection', 'keep-alive'],
              ['X-End-To-End', 'kept'],
            ]),
          },
        ],
        { untilResponses: 1 },
      );
      const f = finals(r)[0];
      assert.equal(f?.status, 200, describeResult(r));
      const got = (JSON.parse(f.body.toString()) as { headers: [string, string][] }).headers.map(([k, v]) => [k.toLowerCase(), v]);
      const names = got.map(([k]) => k);
      assert.ok(!names.includes('x-private'), `a Connection-listed header reached the upstream: ${JSON.stringify(got)}`);
      assert.ok(!names.includes('keep-alive'), JSON.stringify(got));
      assert.ok(!names.includes('proxy-connection'), JSON.stringify(got));
      assert.ok(names.includes('x-end-to-end'), JSON.stringify(got));
      assert.match(got.find(([k]) => k === 'via')?.[1] ?? '', /dreammesh/);
      assert.equal(header(f, 'x-resp-private'), undefined, `a Connection-listed response header reached the client: ${f.head}`);
    });

    test('an upstream that answers before the request body is in: the client gets that answer, then a clean state', async () => {
      const t = tag('afterearly');
      const r = await via(
        e(),
        [{ write: e().head('POST', '/early', [['Content-Length', '200000']]) + 'x'.repeat(1000) }, { awaitResponses: 1, ms: 3000 }, { write: 'x'.repeat(199_000) }, { wait: 100 }, { write: e().head('GET', `/${t}`) }],
        { ms: 5000, untilResponses: 2 },
      );
      const f = finals(r);
      assert.equal(f[0]?.status, 413, `the early answer came through before the body was sent: ${describeResult(r)}`);
      if (f.length > 1) assert.equal(target(f[1]), `/${t}`, `the next request on the connection got its own response: ${describeResult(r)}`);
      else assert.ok(r.closed, `no second response: then the connection must have been closed: ${describeResult(r)}`);
      await mesh.alive(e());
    });
  });
}

describe('Expect: 100-continue against upstreams that do not send 100', () => {
  let dir: string;
  let file2m: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dm-http1-pool-'));
    file2m = join(dir, '2m');
    await writeFile(file2m, Buffer.alloc(2 * 1024 * 1024, 0x6d));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const name of ENTRY_NAMES) {
    test(`${name}: the upstream refuses at once (413, no 100): the client gets the 413, and that upstream connection is never reused`, async () => {
      const e = mesh.entry(name);
      const t0 = Date.now();
      const r = await via(
        e,
        [
          {
            write: e.head('POST', '/expect-reject/raw', [
              ['Content-Length', '100000'],
              ['Expect', '100-continue'],
            ]),
          },
        ],
        { untilResponses: 1, ms: 4000 },
      );
      assert.equal(finals(r)[0]?.status, 413, describeResult(r));
      assert.ok(Date.now() - t0 < 2000, 'promptly');
      const c = await curl(['--data-binary', `@${file2m}`, ...e.curl('/expect-reject/curl')]);
      assert.equal(c.status, 413, c.trace.slice(-1500));
      for (let i = 0; i < 5; i++) {
        const t = tag('afterreject');
        const n = await via(e, [{ write: e.head('GET', `/${t}`) }], { untilResponses: 1, ms: 3000 });
        assert.equal(finals(n)[0]?.status, 200, `request ${i} after the refused Expect: ${describeResult(n)}`);
        assert.equal(target(finals(n)[0]), `/${t}`);
      }
    });

    test(`${name}: an upstream that ignores Expect: curl's 2 MiB upload still completes`, async () => {
      const e = mesh.entry(name);
      const c = await curl(['--data-binary', `@${file2m}`, ...e.curl('/no-continue/curl')]);
      assert.equal(c.status, 200, c.trace.slice(-1500));
      assert.equal((JSON.parse(c.body) as { bodyBytes: number }).bodyBytes, 2 * 1024 * 1024);
    });
  }
});

for (const name of ENTRY_NAMES) {
  test(`${name}: a chunked event stream is passed on event by event`, async () => {
    const e = mesh.entry(name);
    const { host, port } = hostPort(e.address);
    const arrivals = await new Promise<{ ms: number; text: string }[]>((resolve) => {
      const s = connect({ host, port });
      const t0 = Date.now();
      const out: { ms: number; text: string }[] = [];
      const timer = setTimeout(() => {
        s.destroy();
        resolve(out);
      }, 4000);
      s.on('data', (c: Buffer) => {
        out.push({ ms: Date.now() - t0, text: c.toString('latin1') });
        const all = out.map((x) => x.text).join('');
        if (/\r\n0\r\n\r\n$/.test(all.slice(all.indexOf('\r\n\r\n') + 2))) {
          clearTimeout(timer);
          s.destroy();
          resolve(out);
        }
      });
      s.write(e.head('GET', '/sse'));
    });
    const all = arrivals.map((x) => x.text).join('');
    assert.match(all, /data: 4 /, `the stream completed: ${JSON.stringify(all.slice(0, 300))}`);
    const first = arrivals.find((x) => x.text.includes('data: 0'));
    const last = arrivals.find((x) => x.text.includes('data: 4'));
    assert.ok(first && last);
    assert.ok(first.ms < 700, `the first event arrived after ${first.ms} ms (the last one is sent 600 ms after it)`);
    assert.ok(last.ms - first.ms >= 400, `events were held back and sent together (${first.ms} → ${last.ms} ms)`);
  });
}

test('200 clients that connect, write a request and vanish at once: the process serves on, nothing left behind', async () => {
  await Promise.all(
    Array.from({ length: 200 }, (_, i) => {
      const e = mesh.entries[i % 3]!;
      return via(e, [{ write: e.head(i % 2 ? 'POST' : 'GET', `/vanish/${i}`, i % 2 ? [['Content-Length', '10']] : []) }, { destroy: true }], { ms: 2000 });
    }),
  );
  await mesh.alive(undefined, 'after 200 vanishing clients');
});

describe('an upstream that closes idle keep-alive connections after 100 ms', () => {
  let m2: Mesh;
  before(async () => {
    m2 = await startMesh({ endpoints: 1, upstream: { idleCloseMs: 100 } });
  });
  after(async () => {
    await m2?.stop();
  });
  for (const name of ENTRY_NAMES) {
    test(`${name}: GETs and POSTs 250 ms apart all succeed (closed pooled connections are not used)`, async () => {
      const e = m2.entry(name);
      for (let i = 0; i < 6; i++) {
        const method = i % 2 ? 'POST' : 'GET';
        const r = await via(e, [{ write: e.head(method, `/ka/${i}`, method === 'POST' ? [['Content-Length', '5']] : []) + (method === 'POST' ? 'hello' : '') }], { untilResponses: 1 });
        assert.equal(finals(r)[0]?.status, 200, `${method} ${i}: ${describeResult(r)}`);
        await new Promise((res) => setTimeout(res, 250));
      }
    });
  }
});

test('keep-alive upstream connections are pooled: 60 sequential requests on fresh downstream connections open only a few upstream ones', async () => {
  const before = mesh.upstreams[0]!.connections();
  for (let i = 0; i < 60; i++) {
    const e = mesh.entries[i % 3]!;
    const r = await via(e, [{ write: e.head('GET', `/pooled/${i}`, [['Connection', 'close']]) }], { untilResponses: 1 });
    assert.equal(finals(r)[0]?.status, 200, describeResult(r));
  }
  const opened = mesh.upstreams[0]!.connections() - before;
  assert.ok(opened <= 6, `${opened} upstream connections opened for 60 sequential requests`);
});

test('no socket is left behind', async () => {
  await mesh.alive();
  await mesh.noLeaks(baseline, 'after the pool tests');
});
