// Real clients through every HTTP entry (explicit, forward proxy, inbound) of a sidecar process:
// curl (GET, `-d hello`, a 2 MiB upload that sends Expect: 100-continue, chunked, HEAD), Python
// urllib and http.client, Java 17 HttpClient (whose default version offers an h2c upgrade), and
// undici (including pipelining). After each the process must be alive and serving; a dozen Expect
// uploads must not eject an endpoint; the shared entry-smoke script must pass.
import { describe, test, before, after, beforeEach } from 'node:test';
import { Readable } from 'node:stream';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request, Client, ProxyAgent } from 'undici';
import { startMesh, ENTRY_NAMES, metricSum, type Mesh, type SocketReport } from '../helpers/http1-mesh.js';
import { curl, runPython, runJava, whyNoJava, clientEntry, type ClientResult } from '../helpers/http1-clients.js';
import { header } from '../helpers/http1-wire.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let mesh: Mesh;
let dir: string;
let file2m: string;
let sha2m: string;
let baseline: SocketReport;

before(async () => {
  mesh = await startMesh();
  dir = await mkdtemp(join(tmpdir(), 'dm-http1-clients-'));
  file2m = join(dir, '2m');
  const buf = Buffer.alloc(2 * 1024 * 1024, 0x7a);
  await writeFile(file2m, buf);
  sha2m = createHash('sha256').update(buf).digest('hex');
  await mesh.alive();
  baseline = await mesh.quietSockets();
});
beforeEach(async () => {
  await mesh?.revive();
});
after(async () => {
  await mesh?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function json(body: string): { bodyBytes?: number; sha256?: string; target?: string; method?: string } {
  try {
    return JSON.parse(body) as { bodyBytes?: number };
  } catch {
    return {};
  }
}

for (const name of ENTRY_NAMES) {
  describe(`curl through ${name}`, () => {
    const e = (): ReturnType<Mesh['entry']> => mesh.entry(name);

    test('GET', async () => {
      const r = await curl(e().curl('/curl/get'));
      assert.equal(r.status, 200, r.trace);
      assert.equal(json(r.body).method, 'GET');
      await mesh.alive(e());
    });

    test('POST -d hello', async () => {
      const r = await curl(['-d', 'hello', ...e().curl('/curl/post')]);
      assert.equal(r.status, 200, r.trace);
      assert.equal(json(r.body).bodyBytes, 5);
      await mesh.alive(e(), 'after curl -d hello');
    });

    test("POST 2 MiB from a file: Expect: 100-continue, the upstream's 100 reaches curl, then the final 200; every byte arrives", async () => {
      const t0 = Date.now();
      const r = await curl(['--data-binary', `@${file2m}`, ...e().curl('/curl/expect')]);
      assert.equal(r.status, 200, `status ${r.status}, curl exit ${r.code}: ${r.trace.slice(-1500)}`);
      assert.match(r.trace, /^> Expect: 100-continue/im, 'curl sent Expect');
      assert.match(r.trace, /^< HTTP\/1\.1 100 Continue/im, 'curl got a 100 Continue');
      assert.match(r.trace, /^< x-interim: upstream/im, "the 100 was the upstream's, relayed");
      assert.equal(json(r.body).bodyBytes, 2 * 1024 * 1024);
      assert.equal(json(r.body).sha256, sha2m);
      assert.ok(Date.now() - t0 < 900, `curl did not have to wait out its 1 s Expect timeout (${Date.now() - t0} ms)`);
      const seen = mesh.seenWith('/curl/expect').at(-1);
      assert.match(header(seen!, 'expect') ?? '', /100-continue/i, 'Expect was relayed to the upstream');
      await mesh.alive(e());
    });

    test('chunked POST (-H Transfer-Encoding: chunked)', async () => {
      const r = await curl(['-H', 'Transfer-Encoding: chunked', '-d', 'hello', ...e().curl('/curl/chunked')]);
      assert.equal(r.status, 200, r.trace);
      assert.equal(json(r.body).bodyBytes, 5);
      await mesh.alive(e());
    });

    test('HEAD (-I)', async () => {
      const r = await curl(['-I', ...e().curl('/curl/head')]);
      assert.equal(r.status, 200, r.trace);
      assert.equal(r.code, 0, `curl exit ${r.code}: ${r.trace.slice(-500)}`);
      await mesh.alive(e());
    });
  });
}

test('curl -d hello to the inbound listener does not end the process (it used to)', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await curl(['-d', 'hello', `http://${mesh.entry('inbound').address}/crash-${i}`]);
    assert.equal(r.status, 200, r.trace);
  }
  await mesh.alive(undefined, 'after POSTs to inbound');
});

test('12 Expect uploads through explicit and 12 through proxy: all 200, no endpoint counted as failed or ejected', async () => {
  const ej0 = metricSum(await mesh.metrics(), 'dreammesh_endpoint_ejections_total');
  for (const name of ['explicit', 'proxy'] as const) {
    for (let i = 0; i < 12; i++) {
      const r = await curl(['--data-binary', `@${file2m}`, ...mesh.entry(name).curl(`/curl/dozen/${name}/${i}`)]);
      assert.equal(r.status, 200, `${name} upload ${i}: ${r.trace.slice(-1500)}`);
      assert.equal(json(r.body).bodyBytes, 2 * 1024 * 1024);
    }
  }
  const eps = await mesh.endpoints();
  assert.equal(eps.length, 2);
  for (const ep of eps) {
    assert.ok(ep.healthy, `endpoint ${ep.address} healthy: ${JSON.stringify(ep)}`);
    assert.equal(ep.consecutiveFailures, 0, `endpoint ${ep.address}: ${JSON.stringify(ep)}`);
  }
  assert.equal(metricSum(await mesh.metrics(), 'dreammesh_endpoint_ejections_total'), ej0);
});

function check(results: ClientResult[], expectCases: number): void {
  assert.equal(results.length, expectCases * ENTRY_NAMES.length, JSON.stringify(results).slice(0, 2000));
  const bad = results.filter((r) => r.status !== 200 && r.status !== 200200);
  assert.deepEqual(
    bad.map((r) => `${r.entry} / ${r.case}: ${r.status} ${r.error ?? ''} ${r.body.slice(0, 200)}`),
    [],
    'every case answered 200',
  );
}

test('Python urllib and http.client through every entry (GET, POST, keep-alive, Expect with an eager body, chunked PUT, HEAD)', async () => {
  const results = await runPython(mesh.entries.map(clientEntry));
  check(results, 6);
  for (const r of results) {
    if (r.case.startsWith('http.client POST Expect')) assert.equal(json(r.body).bodyBytes, 300000, `${r.entry}: ${r.body}`);
    if (r.case === 'http.client chunked PUT') assert.equal(json(r.body).bodyBytes, 3001, `${r.entry}: ${r.body}`);
    if (r.case === 'http.client keep-alive x3') {
      const bodies = JSON.parse(r.body) as { target: string }[];
      assert.deepEqual(
        bodies.map((b) => b.target.replace(/^http:\/\/svc/, '')),
        ['/py/keepalive/0', '/py/keepalive/1', '/py/keepalive/2'],
      );
    }
  }
  await mesh.alive();
});

test('Java 17 HttpClient through every entry (the default version offers h2c: answered as plain HTTP/1.1; 2 MiB with expectContinue)', async (t) => {
  const why = await whyNoJava();
  if (why !== null) return t.skip(why);
  const results = await runJava(mesh.entries.map(clientEntry));
  check(results, 5);
  for (const r of results) {
    assert.equal(r.version, 'HTTP_1_1', `${r.entry} / ${r.case}: answered over ${r.version}`);
    if (r.case.includes('2 MiB')) assert.equal(json(r.body).bodyBytes, 2 * 1024 * 1024, `${r.entry} / ${r.case}`);
  }
  const offered = mesh.seenWith('/java/GET-default-version');
  assert.equal(offered.length, ENTRY_NAMES.length);
  for (const s of offered) {
    assert.equal(header(s, 'upgrade'), undefined, `the h2c upgrade was stripped before the upstream: ${s.head}`);
    assert.equal(header(s, 'http2-settings'), undefined, `HTTP2-Settings was stripped: ${s.head}`);
    assert.doesNotMatch(header(s, 'connection') ?? '', /upgrade|http2-settings/i, s.head);
  }
  await mesh.alive();
});

test('undici: request, a proxy agent (absolute-form), pipelined keep-alive client, streamed 1 MiB upload', async () => {
  const ex = mesh.entry('explicit');
  const r1 = await request(`http://${ex.address}/undici/get`, { headers: { host: 'svc' } });
  assert.equal(r1.statusCode, 200);
  await r1.body.text();
  const agent = new ProxyAgent({ uri: mesh.entry('proxy').proxy!, proxyTunnel: false });
  try {
    const r2 = await request('http://svc/undici/proxy', { dispatcher: agent, method: 'POST', body: 'hello' });
    assert.equal(r2.statusCode, 200);
    assert.equal((JSON.parse(await r2.body.text()) as { bodyBytes: number }).bodyBytes, 5);
  } finally {
    await agent.close();
  }
  for (const e of mesh.entries.filter((x) => x.name !== 'proxy')) {
    const client = new Client(`http://${e.address}`, { pipelining: 10 });
    try {
      const rs = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          client.request({ path: `/undici/pipelined/${i}`, method: 'GET', headers: { host: 'svc' } }).then(async (r) => ({ status: r.statusCode, body: JSON.parse(await r.body.text()) as { target: string } })),
        ),
      );
      assert.deepEqual(
        rs.map((r) => r.status),
        Array(50).fill(200),
        e.name,
      );
      assert.deepEqual(
        rs.map((r) => r.body.target),
        Array.from({ length: 50 }, (_, i) => `/undici/pipelined/${i}`),
        `${e.name}: each response matches its request`,
      );
      async function* gen(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 16; i++) {
          yield Buffer.alloc(64 * 1024, 0x41 + i);
          await new Promise((r) => setImmediate(r));
        }
      }
      const up = await client.request({ path: '/undici/stream', method: 'PUT', headers: { host: 'svc' }, body: Readable.from(gen()) });
      assert.equal(up.statusCode, 200, e.name);
      assert.equal((JSON.parse(await up.body.text()) as { bodyBytes: number }).bodyBytes, 1024 * 1024, e.name);
    } finally {
      await client.close();
    }
  }
  await mesh.alive();
});

test('/work/shared/tools/entry-smoke.sh passes against a spawned sidecar (ordinary and awkward requests, garbage bytes)', async (t) => {
  const script = [resolve(ROOT, '../shared/tools/entry-smoke.sh'), '/work/shared/tools/entry-smoke.sh'].find((p) => existsSync(p));
  if (script === undefined) return t.skip('shared/tools/entry-smoke.sh is not beside the project');
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) return t.skip('no built CLI');
  let out = '';
  let code = 0;
  try {
    out = (await run('bash', [script], { cwd: ROOT, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 })).stdout;
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    code = typeof x.code === 'number' ? x.code : -1;
    out = (x.stdout ?? '') + (x.stderr ?? '');
  }
  assert.equal(code, 0, out);
  assert.match(out, /entry-smoke: (\d+)\/\1 ordinary requests answered 2xx/, out);
});

test('no socket is left behind by the clients', async () => {
  await mesh.alive();
  await mesh.noLeaks(baseline, 'after the real clients');
});
