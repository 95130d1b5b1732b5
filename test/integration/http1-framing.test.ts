// The HTTP/1 engine's framing on raw sockets, at every HTTP entry (explicit, forward proxy,
// inbound): pipelining (3 in one write, 10,000 on one connection), half-close, Connection: close
// from either side, HEAD/204/304, 1xx, trailers both ways, transfer codings, smuggling cases,
// header count/size limits counted exactly, missing Host, 1-byte writes. After each bad input the
// sidecar process must be alive and serving; at the end no socket may be left behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { meshPerSuite, tagger, ENTRY_NAMES, finals, describeResult, errorCode, metricSum, via, type Mesh, type SocketReport } from '../helpers/http1-mesh.js';
import { chunked, header, hostPort, splitMessages } from '../helpers/http1-wire.js';

let mesh: Mesh;
let baseline: SocketReport;
const tag = tagger();

meshPerSuite((m, b) => {
  mesh = m;
  baseline = b;
});

function bodyJson(m: { body: Buffer } | undefined): { target?: string; bodyBytes?: number; conn?: number; method?: string } {
  try {
    return JSON.parse(m?.body.toString() ?? '') as { target?: string };
  } catch {
    return {};
  }
}

function target(m: { body: Buffer } | undefined): string | undefined {
  return bodyJson(m).target?.replace(/^http:\/\/svc/, '');
}

for (const name of ENTRY_NAMES) {
  describe(`${name} entry`, () => {
    const e = (): ReturnType<Mesh['entry']> => mesh.entry(name);

    test('three pipelined requests in one write are answered in order', async () => {
      const t = tag('pipe3');
      const bytes = [1, 2, 3].map((i) => e().head('GET', `/${t}/${i}`)).join('');
      const r = await via(e(), [{ write: bytes }], { untilResponses: 3 });
      const f = finals(r);
      assert.deepEqual(
        f.map((m) => m.status),
        [200, 200, 200],
        describeResult(r),
      );
      assert.deepEqual(
        f.map((m) => bodyJson(m).target?.replace(/^http:\/\/svc/, '')),
        [1, 2, 3].map((i) => `/${t}/${i}`),
      );
    });

    test('10,000 pipelined GETs on one connection are all answered, in order, in bounded time', async () => {
      const t = tag('pipe10k');
      const N = 10_000;
      const { host, port } = hostPort(e().address);
      const started = Date.now();
      const result = await new Promise<{ order: boolean; count: number; statuses: Set<number>; why: string }>((resolve) => {
        const s = connect({ host, port });
        let buf: Buffer = Buffer.alloc(0);
        let count = 0;
        let order = true;
        const statuses = new Set<number>();
        const done = (why: string): void => {
          clearTimeout(timer);
          s.destroy();
          resolve({ order, count, statuses, why });
        };
        const timer = setTimeout(() => done('timeout'), 20_000);
        s.on('error', (err) => done(String(err)));
        s.on('end', () => done('closed by the sidecar'));
        s.on('data', (c: Buffer) => {
          buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
          for (;;) {
            const { messages, rest } = splitMessages(buf, 'response', { limit: 1 });
            const m = messages[0];
            if (m === undefined || !m.complete) break;
            buf = rest;
            statuses.add(m.status);
            if (bodyJson(m).target?.endsWith(`/${t}/${count}`) !== true) order = false;
            count += 1;
            if (count === N) return done('all');
          }
        });
        const reqs: string[] = [];
        for (let i = 0; i < N; i++) reqs.push(e().head('GET', `/${t}/${i}`));
        s.write(reqs.join(''));
      });
      assert.equal(result.count, N, `answered ${result.count} of ${N} (${result.why}) in ${Date.now() - started} ms`);
      assert.deepEqual([...result.statuses], [200]);
      assert.ok(result.order, 'responses in request order');
      await mesh.alive(e());
    });

    test('half-close: a request followed by FIN still gets its whole response', async () => {
      const t = tag('halfclose');
      const r = await via(e(), [{ write: e().head('POST', `/${t}`, [['Content-Length', '5']]) + 'hello' }, { end: true }]);
      const f = finals(r);
      assert.equal(f[0]?.status, 200, describeResult(r));
      assert.ok(f[0]?.complete);
      assert.equal(bodyJson(f[0]).bodyBytes, 5);
    });

    test('Connection: close from the client: the response, then the connection closes', async () => {
      const t = tag('cclose');
      const r = await via(e(), [{ write: e().head('GET', `/${t}`, [['Connection', 'close']]) }], { ms: 4000 });
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      assert.ok(finals(r)[0]?.complete);
      assert.ok(r.closed, 'the sidecar closed the connection after the response');
      assert.ok(r.ms < 3500, `closed promptly (${r.ms} ms)`);
    });

    test('Connection: close from the upstream: the response arrives whole and that upstream connection is not reused', async () => {
      const t = tag('uclose');
      const r = await via(e(), [{ write: e().head('GET', `/close?${t}`) }, { awaitResponses: 1 }, { wait: 100 }, { write: e().head('GET', `/${t}/after`) }], { ms: 4000, untilResponses: 2 });
      const f = finals(r);
      assert.equal(f[0]?.status, 200, describeResult(r));
      assert.equal(f[0]?.body.toString(), 'closed');
      if (f.length === 1) {
        assert.ok(r.closed, 'either the downstream connection closes after the response, or it keeps serving');
      } else {
        assert.equal(f[1]?.status, 200, describeResult(r));
        const closedOn = mesh.seenWith(`/close?${t}`)[0];
        const after = mesh.seenWith(`/${t}/after`)[0];
        assert.ok(closedOn && after);
        assert.ok(!(closedOn.conn === after.conn && mesh.upstreams.some((u) => u.seen.includes(closedOn) && u.seen.includes(after))), 'the next request went on a new upstream connection');
      }
      await mesh.alive(e());
    });

    test('HEAD (also of a chunked resource), 204 and 304 carry no body: the next pipelined response parses cleanly', async () => {
      const t = tag('nobody');
      const bytes =
        e().head('HEAD', `/${t}/head`) +
        e().head('GET', `/${t}/1`) +
        e().head('GET', '/204') +
        e().head('GET', `/${t}/2`) +
        e().head('GET', '/304', [['If-None-Match', '"v1"']]) +
        e().head('GET', `/${t}/3`) +
        e().head('HEAD', '/trailers') +
        e().head('GET', `/${t}/4`);
      const r = await via(e(), [{ write: bytes }], { untilResponses: 8, methods: ['HEAD', 'GET', 'GET', 'GET', 'GET', 'GET', 'HEAD', 'GET'] });
      const f = finals(r);
      assert.deepEqual(
        f.map((m) => m.status),
        [200, 200, 204, 200, 304, 200, 200, 200],
        describeResult(r),
      );
      assert.equal(f[6]?.body.length, 0, 'HEAD of a chunked resource: no body, no chunk framing');
      assert.equal(target(f[7]), `/${t}/4`);
      assert.equal(f[0]?.body.length, 0);
      assert.ok(Number(header(f[0], 'content-length')) > 0, 'HEAD keeps the Content-Length a GET would have');
      assert.deepEqual(
        [f[1], f[3], f[5]].map((m) => bodyJson(m).target?.replace(/^http:\/\/svc/, '')),
        [1, 2, 3].map((i) => `/${t}/${i}`),
      );
    });

    test('103 Early Hints is relayed before the final response', async () => {
      const r = await via(e(), [{ write: e().head('GET', '/hints') }], { untilResponses: 1 });
      assert.deepEqual(
        r.responses.map((m) => m.status),
        [103, 200],
        describeResult(r),
      );
      assert.match(header(r.responses[0]!, 'link') ?? '', /style\.css/);
    });

    test('a chunked request with trailers reaches the upstream with byte-identical framing', async () => {
      const t = tag('reqtrailers');
      const body = chunked(
        ['hello ', 'chunked ', 'world'],
        [
          ['x-checksum', 'abc123'],
          ['x-more', 'yes'],
        ],
      );
      const r = await via(
        e(),
        [
          {
            write: e().head('POST', `/${t}`, [
              ['Transfer-Encoding', 'chunked'],
              ['Trailer', 'x-checksum, x-more'],
            ]),
          },
          { write: body },
        ],
        { untilResponses: 1 },
      );
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      const seen = mesh.seenWith(t)[0];
      assert.ok(seen, 'the upstream saw the request');
      assert.equal(seen.rawBody.toString('latin1'), body.toString('latin1'));
      assert.deepEqual(seen.trailers, [
        ['x-checksum', 'abc123'],
        ['x-more', 'yes'],
      ]);
    });

    test('chunked response trailers reach the client', async () => {
      const r = await via(e(), [{ write: e().head('GET', '/trailers', [['TE', 'trailers']]) }], { untilResponses: 1 });
      const f = finals(r)[0];
      assert.equal(f?.status, 200, describeResult(r));
      assert.equal(f?.body.toString(), 'hello world');
      assert.deepEqual(f?.trailers, [['x-checksum', '42']]);
    });

    test('Transfer-Encoding: gzip, chunked arrives upstream with that header and the chunked bytes unchanged', async () => {
      const t = tag('gzipchunked');
      const body = chunked([Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]), Buffer.from('rest-of-gzip-bytes')]);
      const r = await via(e(), [{ write: Buffer.concat([Buffer.from(e().head('POST', `/${t}`, [['Transfer-Encoding', 'gzip, chunked']])), body]) }], { untilResponses: 1 });
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      const seen = mesh.seenWith(t)[0];
      assert.ok(seen);
      assert.equal(header(seen, 'transfer-encoding'), 'gzip, chunked');
      assert.equal(header(seen, 'content-length'), undefined);
      assert.equal(seen.rawBody.toString('latin1'), body.toString('latin1'));
    });

    test('Transfer-Encoding: gzip (chunked not last) is a 400 MESH_ERR_BAD_REQUEST', async () => {
      const t = tag('gziponly');
      const r = await via(e(), [{ write: e().head('POST', `/${t}`, [['Transfer-Encoding', 'gzip']]) + 'abcdef' }]);
      assert.equal(finals(r)[0]?.status, 400, describeResult(r));
      assert.equal(errorCode(finals(r)[0]), 'MESH_ERR_BAD_REQUEST');
      assert.equal(mesh.seenWith(t).length, 0);
      await mesh.alive(e());
    });

    describe('request smuggling: 400 MESH_ERR_BAD_REQUEST, and the upstream never sees a second request', () => {
      const cases: [string, (t: string) => string][] = [
        [
          'CL + TE',
          (t) =>
            e().head('POST', `/${t}`, [
              ['Content-Length', '5'],
              ['Transfer-Encoding', 'chunked'],
            ]) +
            '0\r\n\r\n' +
            e().head('GET', `/${t}-smuggled`),
        ],
        [
          'TE + CL',
          (t) =>
            e().head('POST', `/${t}`, [
              ['Transfer-Encoding', 'chunked'],
              ['Content-Length', '30'],
            ]) +
            '0\r\n\r\n' +
            e().head('GET', `/${t}-smuggled`),
        ],
        [
          'two Content-Lengths',
          (t) =>
            e().head('POST', `/${t}`, [
              ['Content-Length', '0'],
              ['Content-Length', '40'],
            ]) + e().head('GET', `/${t}-smuggled`),
        ],
        ['Content-Length: 1, 1', (t) => e().head('POST', `/${t}`, [['Content-Length', '1, 1']]) + 'x' + e().head('GET', `/${t}-smuggled`)],
        ['obs-fold', (t) => e().head('GET', `/${t}`, [['X-Folded', 'a\r\n  Content-Length: 40']]) + e().head('GET', `/${t}-smuggled`)],
        ['bare LF line ends', (t) => e().head('GET', `/${t}`).replace(/\r\n/g, '\n') + e().head('GET', `/${t}-smuggled`)],
        ['bare LF inside a header line', (t) => e().head('GET', `/${t}`, [['X-A', 'b\nContent-Length: 40']]) + e().head('GET', `/${t}-smuggled`)],
        ['bad chunk size', (t) => e().head('POST', `/${t}`, [['Transfer-Encoding', 'chunked']]) + 'zz\r\nhello\r\n0\r\n\r\n' + e().head('GET', `/${t}-smuggled`)],
        ['chunk size with a sign', (t) => e().head('POST', `/${t}`, [['Transfer-Encoding', 'chunked']]) + '+5\r\nhello\r\n0\r\n\r\n' + e().head('GET', `/${t}-smuggled`)],
      ];
      for (const [label, build] of cases) {
        test(label, async () => {
          const t = tag('smuggle');
          const r = await via(e(), [{ write: build(t) }], { ms: 4000 });
          const f = finals(r);
          assert.equal(f[0]?.status, 400, `${label}: ${describeResult(r)}`);
          assert.equal(errorCode(f[0]), 'MESH_ERR_BAD_REQUEST', label);
          assert.equal(f.length, 1, `${label}: exactly one response: ${describeResult(r)}`);
          assert.ok(r.closed, `${label}: the connection is closed after the 400`);
          assert.equal(mesh.seenWith(`${t}-smuggled`).length, 0, `${label}: the smuggled request reached the upstream`);
          assert.equal(mesh.seenWith(t).length, 0, `${label}: the rejected request reached the upstream`);
          await mesh.alive(e(), label);
        });
      }
    });

    test(`header count: exactly limits.maxHeaderCount (100) fields pass, 101 get 431 MESH_ERR_HEADERS_TOO_LARGE`, async () => {
      const t = tag('count');
      const fields = (n: number): [string, string][] => Array.from({ length: n - 1 }, (_, i) => [`x-h${i}`, 'v'] as [string, string]); // + Host
      const ok = await via(e(), [{ write: e().head('GET', `/${t}/100`, fields(100)) }], { untilResponses: 1 });
      assert.equal(finals(ok)[0]?.status, 200, `100 header fields: ${describeResult(ok)}`);
      const bad = await via(e(), [{ write: e().head('GET', `/${t}/101`, fields(101)) }]);
      assert.equal(finals(bad)[0]?.status, 431, `101 header fields: ${describeResult(bad)}`);
      assert.equal(errorCode(finals(bad)[0]), 'MESH_ERR_HEADERS_TOO_LARGE');
      assert.equal(mesh.seenWith(`/${t}/101`).length, 0);
      const many = await via(e(), [{ write: e().head('GET', `/${t}/2000`, fields(2000)) }]);
      assert.equal(finals(many)[0]?.status, 431, `2000 header fields: ${describeResult(many)}`);
      await mesh.alive(e());
    });

    test('header bytes: a head of exactly limits.maxHeaderBytes (16384, request line to final CRLF) passes; one byte more is 431', async () => {
      const t = tag('bytes');
      const sized = (n: number): string => {
        const base = e().head('GET', `/${t}/${n}`, [['X-Pad', '']]);
        const h = e().head('GET', `/${t}/${n}`, [['X-Pad', 'p'.repeat(n - base.length)]]);
        assert.equal(Buffer.byteLength(h), n);
        return h;
      };
      const ok = await via(e(), [{ write: sized(16384) }], { untilResponses: 1 });
      assert.equal(finals(ok)[0]?.status, 200, `16384-byte head: ${describeResult(ok)}`);
      const bad = await via(e(), [{ write: sized(16385) }]);
      assert.equal(finals(bad)[0]?.status, 431, `16385-byte head: ${describeResult(bad)}`);
      assert.equal(errorCode(finals(bad)[0]), 'MESH_ERR_HEADERS_TOO_LARGE');
      assert.equal(mesh.seenWith(`/${t}/16385`).length, 0);
      const big = await via(e(), [{ write: sized(19000) }]);
      assert.equal(finals(big)[0]?.status, 431, `19000-byte head: ${describeResult(big)}`);
      await mesh.alive(e());
    });

    test('an HTTP/1.1 request without Host is a 400 MESH_ERR_BAD_HOST', async () => {
      const t = tag('nohost');
      const r = await via(e(), [{ write: `GET ${e().target(`/${t}`)} HTTP/1.1\r\nX-A: b\r\n\r\n` }]);
      assert.equal(finals(r)[0]?.status, 400, describeResult(r));
      assert.equal(errorCode(finals(r)[0]), 'MESH_ERR_BAD_HOST');
      assert.equal(mesh.seenWith(t).length, 0);
      await mesh.alive(e());
    });

    test('refused requests are counted: dreammesh_requests_total{code="400"} and {code="431"} go up by one each', async () => {
      const m0 = await mesh.metrics();
      const b0 = metricSum(m0, 'dreammesh_requests_total', { code: '400' });
      const h0 = metricSum(m0, 'dreammesh_requests_total', { code: '431' });
      const bad = await via(e(), [
        {
          write:
            e().head('POST', '/counted', [
              ['Content-Length', '1'],
              ['Transfer-Encoding', 'chunked'],
            ]) + '0\r\n\r\n',
        },
      ]);
      assert.equal(finals(bad)[0]?.status, 400, describeResult(bad));
      const big = await via(e(), [
        {
          write: e().head(
            'GET',
            '/counted',
            Array.from({ length: 150 }, (_, i) => [`x-c${i}`, 'v'] as [string, string]),
          ),
        },
      ]);
      assert.equal(finals(big)[0]?.status, 431, describeResult(big));
      let m1 = await mesh.metrics();
      for (let i = 0; i < 20 && metricSum(m1, 'dreammesh_requests_total', { code: '431' }) < h0 + 1; i++) {
        await new Promise((r) => setTimeout(r, 50));
        m1 = await mesh.metrics();
      }
      assert.equal(metricSum(m1, 'dreammesh_requests_total', { code: '400' }), b0 + 1, 'the 400 was counted');
      assert.equal(metricSum(m1, 'dreammesh_requests_total', { code: '431' }), h0 + 1, 'the 431 was counted');
    });

    test('a request head (and body) written one byte at a time succeeds', async () => {
      const t = tag('dribble');
      const bytes =
        e().head('POST', `/${t}`, [
          ['Content-Length', '11'],
          ['X-Some', 'header value'],
        ]) + 'hello world';
      const r = await via(e(), [{ dribble: bytes }], { untilResponses: 1, ms: 8000 });
      assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      assert.equal(bodyJson(finals(r)[0]).bodyBytes, 11);
      const r2 = await via(e(), [{ dribble: e().head('GET', `/${t}/slow`), gapMs: 5 }], { untilResponses: 1, ms: 8000 });
      assert.equal(finals(r2)[0]?.status, 200, describeResult(r2));
    });
  });
}

test("no socket is left behind after all of the above, and no endpoint was blamed for a client's bad input", async () => {
  await mesh.alive();
  for (const ep of await mesh.endpoints()) {
    assert.ok(ep.healthy, JSON.stringify(ep));
    assert.equal(ep.consecutiveFailures, 0, `bad requests counted against ${ep.address}: ${JSON.stringify(ep)}`);
  }
  await mesh.noLeaks(baseline, 'after the framing tests');
});
