// Edge cases of the HTTP/1 engine beyond the headline list, at every entry (explicit, forward
// proxy, inbound) of a sidecar process: more strict-framing rejections (as strict as llhttp),
// conflicting framing from the upstream, bytes that share a packet with an upgrade (client's
// first frame with its handshake; upstream's first frame with its 101), HTTP/1.0 and
// Connection: close ending the connection with later pipelined requests never forwarded, errors in
// the middle of a pipeline, many tiny chunks, a large upload and a slow reader, and 100 concurrent
// keep-alive connections. The process alive after each; no socket left behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { meshPerSuite, tagger, ENTRY_NAMES, finals, describeResult, errorCode, via, type Mesh, type SocketReport, type Entry } from '../helpers/http1-mesh.js';
import { chunked, header, hostPort } from '../helpers/http1-wire.js';
import { patternSha256 } from '../helpers/http1-upstream.js';
import { clientFrame, readFrames, wsHeaders, wsKey, OP } from '../helpers/ws-frames.js';

let mesh: Mesh;
let baseline: SocketReport;
const tag = tagger();

meshPerSuite((m, b) => {
  mesh = m;
  baseline = b;
});

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

    describe('more framing the codec must refuse (400 MESH_ERR_BAD_REQUEST, nothing forwarded)', () => {
      const cases: [string, (t: string) => string][] = [
        ['Content-Length: -1', (t) => e().head('POST', `/${t}`, [['Content-Length', '-1']])],
        ['Content-Length: +5', (t) => e().head('POST', `/${t}`, [['Content-Length', '+5']]) + 'hello'],
        ['Content-Length with a space before the colon', (t) => e().head('POST', `/${t}`, [['Content-Length ', '5']]) + 'hello'],
        ['Transfer-Encoding with a space before the colon', (t) => e().head('POST', `/${t}`, [['Transfer-Encoding ', 'chunked']]) + '0\r\n\r\n'],
        ['Transfer-Encoding: xchunked', (t) => e().head('POST', `/${t}`, [['Transfer-Encoding', 'xchunked']]) + '0\r\n\r\n'],
        ['chunk size overflow', (t) => e().head('POST', `/${t}`, [['Transfer-Encoding', 'chunked']]) + 'fffffffffffffffff1\r\nx\r\n0\r\n\r\n'],
        ['chunk data without its CRLF', (t) => e().head('POST', `/${t}`, [['Transfer-Encoding', 'chunked']]) + '5\r\nhelloXX0\r\n\r\n'],
        ['bare LF in chunked framing', (t) => e().head('POST', `/${t}`, [['Transfer-Encoding', 'chunked']]) + '5\nhello\n0\n\n'],
        ['NUL in a header value', (t) => e().head('GET', `/${t}`, [['X-A', 'b\x00c']])],
        ['a bare CR in a header value', (t) => e().head('GET', `/${t}`, [['X-A', 'b\rc']])],
        ['a space in a header name', (t) => e().head('GET', `/${t}`, [['X A', 'b']])],
        ['lower-case http version', (t) => `GET ${e().target(`/${t}`)} http/1.1\r\nHost: svc\r\n\r\n`],
        ['HTTP/1.1 followed by junk', (t) => `GET ${e().target(`/${t}`)} HTTP/1.1x\r\nHost: svc\r\n\r\n`],
      ];
      for (const [label, build] of cases) {
        test(label, async () => {
          const t = tag('strict');
          const r = await via(e(), [{ write: build(t) }], { ms: 3000 });
          const f = finals(r)[0];
          assert.equal(f?.status, 400, `${label}: ${describeResult(r)}`);
          assert.equal(errorCode(f), 'MESH_ERR_BAD_REQUEST', label);
          assert.equal(mesh.seenWith(t).length, 0, `${label}: reached the upstream`);
          await mesh.alive(e(), label);
        });
      }
    });

    test('Transfer-Encoding on HTTP/1.0: a 400, or (as llhttp) read as chunked and the connection closed; nothing after it forwarded', async () => {
      const t = tag('h10te');
      const r = await via(e(), [{ write: `POST ${e().target(`/${t}`)} HTTP/1.0\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n` + e().head('GET', `/${t}-smuggled`) }], { ms: 3000 });
      const f = finals(r);
      assert.ok(f[0]?.status === 400 || f[0]?.status === 200, describeResult(r));
      if (f[0]?.status === 400) assert.equal(errorCode(f[0]), 'MESH_ERR_BAD_REQUEST');
      else assert.equal((JSON.parse(f[0].body.toString()) as { bodyBytes: number }).bodyBytes, 3, 'the body was read as chunked');
      assert.equal(f.length, 1, describeResult(r));
      assert.ok(r.closed, 'the connection is closed after it');
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(mesh.seenWith(`${t}-smuggled`).length, 0);
      await mesh.alive(e());
    });

    test('an upstream response with Content-Length and chunked, or two Content-Lengths: never relayed ambiguous', async () => {
      for (const path of ['/resp-cl-te', '/resp-two-cl']) {
        const t = tag('after');
        const r = await via(e(), [{ write: e().head('GET', path) }, { awaitResponses: 1 }, { write: e().head('GET', `/${t}`) }], { untilResponses: 2, ms: 4000 });
        const f = finals(r);
        assert.ok(f[0] !== undefined, `${path}: some answer: ${describeResult(r)}`);
        if (f[0].status === 502) assert.equal(errorCode(f[0]), 'MESH_ERR_UPSTREAM_PROTOCOL', path);
        else {
          assert.ok(!(header(f[0], 'content-length') !== undefined && header(f[0], 'transfer-encoding') !== undefined), `${path}: relayed with both framings: ${describeResult(r)}`);
          assert.ok(!(header(f[0], 'content-length') ?? '').includes(','), `${path}: relayed with two lengths: ${describeResult(r)}`);
        }
        if (!r.closed || f.length > 1) assert.equal(target(f[1]), `/${t}`, `${path}: the next response on the connection is the right one: ${describeResult(r)}`);
        await mesh.alive(e(), path);
      }
    });

    test("WebSocket: the client's first frame in the same write as its handshake is delivered after the 101", async () => {
      const frame = clientFrame(OP.text, 'early bird');
      const r = await via(e(), [{ write: Buffer.concat([Buffer.from(e().head('GET', '/ws/early', wsHeaders(wsKey()))), frame]) }, { wait: 800 }, { destroy: true }], { ms: 4000 });
      assert.equal(r.responses[0]?.status, 101, describeResult(r));
      const end = r.data.indexOf('\r\n\r\n');
      const frames = readFrames(r.data.subarray(end + 4)).frames;
      assert.equal(frames[0]?.payload.toString(), 'early bird', `echo of the early frame: ${describeResult(r)}`);
      await mesh.alive(e());
    });

    test("WebSocket: the upstream's first frame in the same write as its 101 reaches the client", async () => {
      const r = await via(e(), [{ write: e().head('GET', '/ws-greet', wsHeaders(wsKey())) }, { wait: 300 }, { destroy: true }], { ms: 4000 });
      assert.equal(r.responses[0]?.status, 101, describeResult(r));
      const end = r.data.indexOf('\r\n\r\n');
      assert.equal(readFrames(r.data.subarray(end + 4)).frames[0]?.payload.toString(), 'greetings', describeResult(r));
      await mesh.alive(e());
    });

    test('HTTP/1.0 without keep-alive: the response, then close; a request pipelined after Connection: close is never forwarded', async () => {
      const t = tag('h10');
      const r = await via(e(), [{ write: `GET ${e().target(`/${t}`)} HTTP/1.0\r\nHost: svc\r\n\r\n` }], { ms: 4000 });
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      assert.ok(r.closed, 'HTTP/1.0 without keep-alive closes');
      const c = tag('closefirst');
      const r2 = await via(e(), [{ write: e().head('GET', `/${c}`, [['Connection', 'close']]) + e().head('GET', `/${c}-second`) }], { ms: 4000 });
      assert.equal(finals(r2).length, 1, describeResult(r2));
      assert.ok(r2.closed);
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(mesh.seenWith(`/${c}-second`).length, 0, 'the request after Connection: close was forwarded');
    });

    test('HTTP/1.0 client, chunked upstream response: relayed without Transfer-Encoding (de-chunked, RFC 9112 6.1), then close', async () => {
      const r = await via(e(), [{ write: `GET ${e().target('/trailers')} HTTP/1.0\r\nHost: svc\r\n\r\n` }], { ms: 4000 });
      const f = finals(r)[0];
      assert.equal(f?.status, 200, describeResult(r));
      assert.equal(header(f, 'transfer-encoding'), undefined, `an HTTP/1.0 client got Transfer-Encoding: ${describeResult(r)}`);
      const body = r.data.subarray(r.data.indexOf('\r\n\r\n') + 4).toString('latin1');
      assert.equal(body, 'hello world', `the body as an HTTP/1.0 client reads it (until close or Content-Length): ${describeResult(r)}`);
      assert.ok(r.closed);
      await mesh.alive(e());
    });

    test('HTTP/1.0 client: no 1xx is sent to it (103 dropped), the final response is', async () => {
      const h = await via(e(), [{ write: `GET ${e().target('/hints')} HTTP/1.0\r\nHost: svc\r\n\r\n` }], { ms: 4000 });
      assert.deepEqual(
        h.responses.map((m) => m.status),
        [200],
        `no 103 to an HTTP/1.0 client: ${describeResult(h)}`,
      );
    });

    test('HTTP/1.0 without Host: served where the destination is known without it (proxy: the URI; inbound: the app), else 400 MESH_ERR_BAD_HOST', async () => {
      const t = tag('h10nohost');
      const r = await via(e(), [{ write: `GET ${e().target(`/${t}`)} HTTP/1.0\r\nUser-Agent: old\r\n\r\n` }], { ms: 4000 });
      const f = finals(r)[0];
      if (name === 'explicit') {
        assert.equal(f?.status, 400, describeResult(r));
        assert.equal(errorCode(f), 'MESH_ERR_BAD_HOST');
      } else {
        assert.equal(f?.status, 200, `HTTP/1.0 needs no Host, and the ${name} entry knows where to go: ${describeResult(r)}`);
        assert.equal(target(f), `/${t}`);
      }
    });

    test('HTTP/1.0 client asking for keep-alive: either served on (two responses) or not told keep-alive and closed', async () => {
      const t = tag('ka10');
      const k = await via(
        e(),
        [
          { write: `GET ${e().target(`/${t}/1`)} HTTP/1.0\r\nHost: svc\r\nConnection: keep-alive\r\n\r\n` },
          { awaitResponses: 1 },
          { write: `GET ${e().target(`/${t}/2`)} HTTP/1.0\r\nHost: svc\r\nConnection: keep-alive\r\n\r\n` },
        ],
        { untilResponses: 2, ms: 4000 },
      );
      const kf = finals(k);
      if (kf.length === 2) assert.deepEqual(kf.map(target), [`/${t}/1`, `/${t}/2`], describeResult(k));
      else {
        assert.doesNotMatch(header(kf[0]!, 'connection') ?? '', /keep-alive/i, `told keep-alive, then closed: ${describeResult(k)}`);
        assert.ok(k.closed);
      }
    });

    test('obs-text bytes in a header value and an encoded query string are forwarded byte for byte', async () => {
      const t = tag('bytes');
      const path = `/${t}?a=1&b=%20x&c=/d;e=%E2%9C%93&f`;
      const r = await via(e(), [{ write: Buffer.from(e().head('GET', path, [['X-Latin', 'caf\xe9 cr\xe8me']]), 'latin1') }], { untilResponses: 1 });
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      const seen = mesh.seenWith(t)[0];
      assert.equal(seen?.target, path);
      assert.equal(header(seen, 'x-latin'), 'caf\xe9 cr\xe8me');
    });

    test('a buggy upstream sending a body to HEAD, or bytes after a 204: the client still gets the right next response', async () => {
      const t = tag('afterbuggy');
      const r = await via(e(), [{ write: e().head('HEAD', '/head-with-body') + e().head('GET', `/${t}/1`) + e().head('GET', '/204-with-body') + e().head('GET', `/${t}/2`) }], {
        untilResponses: 4,
        methods: ['HEAD', 'GET', 'GET', 'GET'],
        ms: 5000,
      });
      const f = finals(r);
      assert.ok(!r.data.toString('latin1').includes('EVIL'), `bytes after a 204 reached the client: ${describeResult(r)}`);
      assert.equal(f[0]?.status, 200, describeResult(r));
      assert.equal(f[0]?.body.length, 0);
      assert.equal(target(f[1]), `/${t}/1`, `the response after HEAD: ${describeResult(r)}`);
      assert.equal(f[2]?.status, 204, describeResult(r));
      assert.equal(target(f[3]), `/${t}/2`, `the response after the 204: ${describeResult(r)}`);
    });

    test('several 1xx (100, 103, 103) are relayed in order before the final response', async () => {
      const r = await via(e(), [{ write: e().head('GET', '/multi-1xx') }], { untilResponses: 1 });
      assert.deepEqual(
        r.responses.map((m) => m.status),
        [100, 103, 103, 200],
        describeResult(r),
      );
      assert.equal(finals(r)[0]?.body.toString(), 'after three 1xx');
    });

    test('a response head of 30 KB (large cookies, policies) is relayed whole', async () => {
      const r = await via(e(), [{ write: e().head('GET', '/widehead/30000') }], { untilResponses: 1 });
      const f = finals(r)[0];
      assert.equal(f?.status, 200, describeResult(r));
      assert.equal(f.headers.filter(([k]) => k.startsWith('x-wide-')).length, 10);
      assert.equal(f.body.toString(), 'wide');
    });

    test('a pipeline with an upstream error in the middle: every request answered, in order', async () => {
      const t = tag('mixed');
      const bytes =
        e().head('GET', `/${t}/1`) + e().head('POST', `/${t}/2`, [['Content-Length', '3']]) + 'abc' + e().head('GET', '/bighead') + e().head('GET', `/${t}/4`) + e().head('GET', '/204') + e().head('GET', `/${t}/6`);
      const r = await via(e(), [{ write: bytes }], { untilResponses: 6, ms: 6000 });
      const f = finals(r);
      assert.deepEqual(
        f.map((m) => m.status),
        [200, 200, 502, 200, 204, 200],
        describeResult(r),
      );
      assert.deepEqual(
        [f[0], f[1], f[3], f[5]].map(target),
        [1, 2, 4, 6].map((i) => `/${t}/${i}`),
      );
    });

    test('10,000 one-byte chunks arrive upstream with byte-identical framing', async () => {
      const t = tag('tiny');
      const parts = Array.from({ length: 10_000 }, (_, i) => String.fromCharCode(97 + (i % 26)));
      const body = chunked(parts, [['x-n', '10000']]);
      const r = await via(e(), [{ write: Buffer.concat([Buffer.from(e().head('POST', `/${t}`, [['Transfer-Encoding', 'chunked']])), body]) }], { untilResponses: 1, ms: 10_000 });
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      const seen = mesh.seenWith(t)[0];
      assert.ok(seen?.rawBody.equals(body), 'framing unchanged');
    });
  });
}

test('proxy: an absolute-form request with a different Host goes where its URI says, with the Host rewritten (RFC 9112 3.2.2)', async () => {
  const e = mesh.entry('proxy');
  const t = tag('hostmismatch');
  const r = await via(e, [{ write: `GET http://svc/${t} HTTP/1.1\r\nHost: not-a-service.example\r\n\r\n` }], { untilResponses: 1 });
  assert.equal(finals(r)[0]?.status, 200, describeResult(r));
  const seen = mesh.seenWith(t)[0];
  assert.ok(seen);
  assert.notEqual(header(seen, 'host'), 'not-a-service.example', seen.head);
});

test('a 32 MiB upload and a 32 MiB download to a slow reader arrive intact (explicit)', async () => {
  const e = mesh.entry('explicit');
  const big = Buffer.alloc(32 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  const up = await via(e, [{ write: e.head('PUT', '/upload', [['Content-Length', String(big.length)]]) }, { write: big }], { untilResponses: 1, ms: 30_000 });
  const j = JSON.parse(finals(up)[0]?.body.toString() ?? '{}') as { bodyBytes?: number; sha256?: string };
  assert.equal(j.bodyBytes, big.length, describeResult(up));
  assert.equal(j.sha256, createHash('sha256').update(big).digest('hex'));
  // A reader that pauses: the sidecar must apply backpressure, and lose or change nothing.
  const body = await download(e, `/big/${32 * 1024 * 1024}`, 32 * 1024 * 1024, [1000]);
  assert.equal(body.length, 32 * 1024 * 1024);
  assert.equal(createHash('sha256').update(body).digest('hex'), patternSha256(body.length), 'every byte of the download as the upstream sent it');
  await mesh.alive(e);
});

/** GETs `path` and returns the body (exactly `size` bytes expected), pausing the socket for each of `pauses` ms. */
function download(e: Entry, path: string, size: number, pauses: number[]): Promise<Buffer> {
  const { host, port } = hostPort(e.address);
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const chunks: Buffer[] = [];
    let n = -1;
    let headBuf: Buffer = Buffer.alloc(0);
    const left = [...pauses];
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, 30_000);
    s.on('error', done);
    s.on('data', (c: Buffer) => {
      if (n < 0) {
        headBuf = Buffer.concat([headBuf, c]);
        const i = headBuf.indexOf('\r\n\r\n');
        if (i === -1) return;
        chunks.push(headBuf.subarray(i + 4));
        n = headBuf.length - i - 4;
      } else {
        chunks.push(c);
        n += c.length;
      }
      if (n >= size) return done();
      const p = left.shift();
      if (p !== undefined) {
        s.pause();
        setTimeout(() => s.resume(), p);
      }
    });
    s.write(e.head('GET', path));
  });
}

test('40 concurrent downloads through every entry (plain and dribbled responses), readers pausing now and then: every byte right', async () => {
  const size = 1024 * 1024 + 12345;
  const want = patternSha256(size);
  const results = await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const e = mesh.entries[i % 3]!;
      const path = i % 4 === 0 ? `/dribble-resp/${200_000}` : `/big/${size}`;
      const n = i % 4 === 0 ? 200_000 : size;
      const body = await download(e, path, n, [30 + (i % 5) * 20, 10, 50]);
      const ok = body.length === n && createHash('sha256').update(body).digest('hex') === (n === size ? want : patternSha256(n));
      return ok ? 'ok' : `${e.name} ${path}: ${body.length} bytes, content ${ok ? 'ok' : 'differs'}`;
    }),
  );
  assert.deepEqual(
    results.filter((r) => r !== 'ok'),
    [],
  );
  await mesh.alive();
});

test('100 concurrent keep-alive connections, 10 requests each, through explicit, proxy and inbound', async () => {
  const results = await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      const e = mesh.entries[i % 3]!;
      const t = `conc-${i}`;
      const r = await via(e, [{ write: Array.from({ length: 10 }, (_, k) => e.head('GET', `/${t}/${k}`)).join('') }], { untilResponses: 10, ms: 20_000 });
      const f = finals(r);
      return f.length === 10 && f.every((m, k) => m.status === 200 && target(m) === `/${t}/${k}`) ? 'ok' : `${e.name} ${t}: ${describeResult(r)}`;
    }),
  );
  assert.deepEqual(
    results.filter((x) => x !== 'ok'),
    [],
  );
  await mesh.alive();
});

test('no socket is left behind after the edge cases', async () => {
  await mesh.alive();
  await mesh.noLeaks(baseline, 'after the edge cases');
});
