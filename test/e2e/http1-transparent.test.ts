// The HTTP/1 engine on the transparent entry: real kernel capture (nftables REDIRECT +
// SO_ORIGINAL_DST) inside network namespaces this test creates (never the machine's own). The
// application (uid 1001) in the client namespace talks to the scripted upstream in the server
// namespace; the sidecar (uid 0, not captured) runs beside it. Real clients (curl incl. a 2 MiB
// Expect upload, Python http.client), raw-socket framing and bad input, WebSocket, pipelining,
// trailers, client faults, the process alive after each and no socket left behind.
// Skipped, with the reason printed, when not root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, whyNoNetns, type NetnsPair } from '../helpers/netns.js';
import { spawnSidecar, CLI, type SpawnedSidecar } from '../helpers/sidecar.js';
import { socketReport, metricSum, type SocketReport } from '../helpers/http1-mesh.js';
import { runJavaAs, whyNoJava } from '../helpers/http1-clients.js';
import { head, chunked, header, splitMessages, type WireMessage, type Step } from '../helpers/http1-wire.js';
import { wsHeaders, wsKey, wsAccept, OP } from '../helpers/ws-frames.js';

const skip = whyNoNetns();
if (skip !== null) process.stdout.write(`# e2e http1-transparent: skipped: ${skip}\n`);

const APP = ['setpriv', '--reuid=1001', '--regid=1001', '--clear-groups'];
const UPSTREAM_MAIN = fileURLToPath(new URL('../helpers/http1-upstream-main.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('../helpers/http1-netns-client.js', import.meta.url));

let net: NetnsPair;
let upstream: ChildProcess | undefined;
let mesh: SpawnedSidecar | undefined;
let dir: string;
let baseline: SocketReport;
let seq = 0;
const tag = (what: string): string => `${what}-${++seq}_`; // "_" ends it: tag 1 never matches tag 10

/** Runs a command in a namespace: stdout and stderr both kept, large outputs allowed. */
function inNs(ns: string, cmd: string[], timeoutMs = 30_000): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function mustInNs(ns: string, cmd: string[]): string {
  const r = inNs(ns, cmd);
  if (r.status !== 0) throw new Error(`[${ns}] ${cmd.join(' ').slice(0, 300)} exited ${r.status}: ${r.stderr.slice(-500)}`);
  return r.stdout;
}

/** Where the application thinks it is going: captured and steered to the sidecar. */
const dst = (): string => `${net.serverIp}:8080`;
const req = (method: string, path: string, headers: [string, string][] = []): string => head(method, path, [['Host', dst()], ...headers]);

interface Result {
  data: Buffer;
  closed: boolean;
  error: string | undefined;
  ms: number;
  responses: WireMessage[];
  finals: WireMessage[];
}

/** A raw exchange made by the application (uid 1001) from the client namespace. */
function appRaw(steps: Step[], opts: { ms?: number; methods?: string[]; untilResponses?: number } = {}): Result {
  const ser = steps.map((s) => ('write' in s && Buffer.isBuffer(s.write) ? { write: s.write.toString('latin1') } : s));
  const out = mustInNs(net.client, [...APP, process.execPath, CLIENT, 'raw', dst(), JSON.stringify(ser), JSON.stringify(opts)]);
  const r = JSON.parse(out) as { data: string; closed: boolean; error?: string; ms: number };
  const data = Buffer.from(r.data, 'base64');
  const responses = splitMessages(data, 'response', { methods: opts.methods ?? [], closed: r.closed }).messages;
  return { data, closed: r.closed, error: r.error, ms: r.ms, responses, finals: responses.filter((m) => m.status >= 200 || m.status === 101) };
}

function show(r: Result): string {
  return JSON.stringify(r.data.toString('latin1').slice(0, 400)) + (r.error ? ` (${r.error})` : '') + (r.closed ? ' [closed]' : ' [open]');
}

function code(m: WireMessage | undefined): string | undefined {
  return m === undefined ? undefined : header(m, 'x-dreammesh-error');
}

interface Seen {
  target: string;
  head: string;
  headers: [string, string][];
  rawBody: string;
  trailers: [string, string][];
}

function seen(): Seen[] {
  const list = JSON.parse(mustInNs(net.server, ['curl', '-s', '-m', '5', 'http://127.0.0.1:8080/__seen'])) as Seen[];
  return list.map((s) => ({ ...s, rawBody: Buffer.from(s.rawBody, 'base64').toString('latin1') }));
}
const seenWith = (t: string): Seen[] => seen().filter((s) => s.target.includes(t));

function metrics(): string {
  return mustInNs(net.client, ['curl', '-s', '-m', '5', 'http://127.0.0.1:15000/metrics']);
}

function appCurl(args: string[]): { status: number; body: string; trace: string; code: number } {
  const r = inNs(net.client, [...APP, 'curl', '-s', '-v', '-m', '15', '-w', '\n%{http_code}', ...args]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)), trace: r.stderr, code: r.status };
}

/** The process is alive and a captured GET reaches the upstream through it (Via added). */
function alive(why = ''): void {
  const c = mesh!.child;
  assert.ok(c.exitCode === null && c.signalCode === null, `${why}: sidecar died (exit ${c.exitCode}, signal ${c.signalCode}):\n${mesh!.stderr().split('\n').slice(-15).join('\n')}`);
  const t = tag('alive');
  const r = appRaw([{ write: req('GET', `/${t}`, [['Connection', 'close']]) }], { untilResponses: 1, ms: 4000 });
  assert.equal(r.finals[0]?.status, 200, `${why}: a captured GET should answer 200: ${show(r)}`);
  assert.match(header(seenWith(t)[0] ?? { headers: [] }, 'via') ?? '', /dreammesh/, `${why}: the GET went through the sidecar`);
}

function sockets(): SocketReport {
  return socketReport(mesh!.child.pid!, [15001, 15006]);
}

describe('HTTP/1 engine on captured (transparent) connections', { skip: skip ?? false }, () => {
  before(async () => {
    net = createNetnsPair('h1');
    upstream = spawn('ip', ['netns', 'exec', net.server, process.execPath, UPSTREAM_MAIN, '8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`upstream did not start: ${out}`)), 10_000);
      upstream!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      upstream!.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      upstream!.once('exit', (code) => reject(new Error(`upstream exited ${code}: ${out}`)));
    });
    mesh = await spawnSidecar(
      {
        listeners: { outbound: '127.0.0.1:15001', admin: '127.0.0.1:15000' },
        timeouts: { requestHeaderMs: 1500, downstreamIdleMs: 1500 },
        // Generous: a JVM's first write on a fresh connection can come >100 ms after connect, and
        // a captured connection silent for detectTimeoutMs is relayed as opaque TCP (no engine).
        transparent: { enabled: true, detectTimeoutMs: 1000, redirect: { proxyUid: 0 } },
        services: { web: { endpoints: [`${net.serverIp}:8080`], timeouts: { requestMs: 500 } } },
      },
      { prefix: ['ip', 'netns', 'exec', net.client] },
    );
    const r = net.try(net.client, [process.execPath, CLI, 'redirect', 'install', '--config', mesh.configFile, '--backend', 'nftables']);
    assert.equal(r.status, 0, r.stderr);
    dir = await mkdtemp(join(tmpdir(), 'dm-h1-tp-'));
    await chmod(dir, 0o755);
    await writeFile(join(dir, '2m'), Buffer.alloc(2 * 1024 * 1024, 0x71), { mode: 0o644 });
    alive('at start');
    baseline = sockets();
    for (let i = 0; i < 60 && (baseline.downstream > 0 || baseline.closeWait > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      baseline = sockets();
    }
  });
  after(async () => {
    if (net) net.try(net.client, [process.execPath, CLI, 'redirect', 'uninstall']);
    await mesh?.stop();
    upstream?.kill('SIGKILL');
    net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('curl GET and curl -d hello from the application are captured and answered', () => {
    const g = appCurl([`http://${dst()}/curl/get`]);
    assert.equal(g.status, 200, g.trace);
    const p = appCurl(['-d', 'hello', `http://${dst()}/curl/post`]);
    assert.equal(p.status, 200, p.trace);
    assert.equal((JSON.parse(p.body) as { bodyBytes: number }).bodyBytes, 5);
    assert.match(header(seenWith('/curl/post')[0]!, 'via') ?? '', /dreammesh/);
    alive('after curl -d hello');
  });

  test("curl 2 MiB upload (Expect: 100-continue): the upstream's 100, then 200, every byte", () => {
    const r = appCurl(['--data-binary', `@${join(dir, '2m')}`, `http://${dst()}/curl/expect`]);
    assert.equal(r.status, 200, r.trace.slice(-1500));
    assert.match(r.trace, /^< HTTP\/1\.1 100 Continue/im);
    assert.match(r.trace, /^< x-interim: upstream/im);
    const j = JSON.parse(r.body) as { bodyBytes: number; sha256: string };
    assert.equal(j.bodyBytes, 2 * 1024 * 1024);
    assert.equal(
      j.sha256,
      createHash('sha256')
        .update(Buffer.alloc(2 * 1024 * 1024, 0x71))
        .digest('hex'),
    );
    alive();
  });

  test('Python http.client as the application: keep-alive, Expect with a body, chunked', () => {
    const py = `
import http.client, json
c = http.client.HTTPConnection('${net.serverIp}', 8080, timeout=10)
out = []
for i in range(3):
    c.request('GET', '/py/%d' % i)
    r = c.getresponse(); out.append([r.status, json.loads(r.read())['target']])
c.request('POST', '/py/expect', body=b'e' * 200000, headers={'Expect': '100-continue'})
r = c.getresponse(); out.append([r.status, json.loads(r.read())['bodyBytes']])
c.request('PUT', '/py/chunked', body=iter([b'a' * 10, b'b' * 20]), encode_chunked=True)
r = c.getresponse(); out.append([r.status, json.loads(r.read())['bodyBytes']])
print(json.dumps(out))
`;
    const out = JSON.parse(mustInNs(net.client, [...APP, '/usr/bin/python3', '-c', py])) as [number, string | number][];
    assert.deepEqual(out, [
      [200, '/py/0'],
      [200, '/py/1'],
      [200, '/py/2'],
      [200, 200000],
      [200, 30],
    ]);
  });

  test('undici as the application: request, 30 pipelined on one client, a streamed upload', () => {
    const out = JSON.parse(mustInNs(net.client, [...APP, process.execPath, CLIENT, 'undici', dst()])) as [[number, string], [number, string][], [number, number]];
    assert.deepEqual(out[0], [200, '/undici/get']);
    assert.deepEqual(
      out[1],
      Array.from({ length: 30 }, (_, i) => [200, `/undici/p/${i}`]),
    );
    assert.deepEqual(out[2], [200, 8 * 64 * 1024]);
  });

  test('the ws client library as the application: text and binary echo through capture', () => {
    const out = JSON.parse(mustInNs(net.client, [...APP, process.execPath, CLIENT, 'wslib', dst()])) as { echoes: string[]; want: string[]; error?: string };
    assert.equal(out.error, undefined, out.error);
    assert.deepEqual(out.echoes, out.want);
  });

  test('Java 17 HttpClient as the application (its default version offers h2c): every case 200 over HTTP/1.1', async (t) => {
    const why = await whyNoJava();
    if (why !== null) return t.skip(why);
    const results = await runJavaAs([...APP], [{ name: 'transparent', kind: 'direct', address: dst(), service: dst() }], dir, (cmd) => inNs(net.client, cmd, 90_000));
    assert.deepEqual(
      results.filter((r) => r.status !== 200 || r.version !== 'HTTP_1_1').map((r) => `${r.case}: ${r.status} ${r.version ?? ''} ${r.error ?? ''}`),
      [],
    );
    const java = seenWith('/java/');
    assert.equal(java.length, 5, java.map((s) => s.head).join('\n'));
    for (const s of java) assert.match(header(s, 'via') ?? '', /dreammesh/, `went through the sidecar: ${s.head}`);
    for (const s of seenWith('/java/GET-default-version')) assert.equal(header(s, 'upgrade'), undefined, s.head);
  });

  test('WebSocket through capture: 101, text and binary echo, counted with mode="transparent"', async () => {
    const before = metricSum(metrics(), 'dreammesh_upgrades_total', { mode: 'transparent' });
    const key = wsKey();
    const msgs = [
      { opcode: OP.text, payload: 'hello' },
      { opcode: OP.binary, payload: Buffer.from([0, 1, 2, 255]).toString('base64'), base64: true },
      { opcode: OP.binary, payload: Buffer.alloc(80_000, 5).toString('base64'), base64: true },
      { opcode: OP.text, payload: 'bye' },
    ];
    const out = mustInNs(net.client, [...APP, process.execPath, CLIENT, 'ws', dst(), req('GET', '/ws/tp', wsHeaders(key)), JSON.stringify(msgs), '6000']);
    const s = JSON.parse(out) as { status: number; responseHead: string; frames: { opcode: number; payload: string }[]; error?: string };
    assert.equal(s.status, 101, `${s.responseHead} ${s.error ?? ''}`);
    assert.ok(s.responseHead.toLowerCase().includes(`sec-websocket-accept: ${wsAccept(key).toLowerCase()}`));
    const echoes = s.frames.filter((f) => f.opcode === OP.text || f.opcode === OP.binary);
    assert.equal(echoes.length, msgs.length);
    for (let i = 0; i < msgs.length; i++) {
      const want = msgs[i]!.base64 ? msgs[i]!.payload : Buffer.from(msgs[i]!.payload).toString('base64');
      assert.equal(echoes[i]!.payload, want, `message ${i}`);
    }
    let now = before;
    for (let i = 0; i < 20 && now < before + 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = metricSum(metrics(), 'dreammesh_upgrades_total', { mode: 'transparent' });
    }
    assert.equal(now, before + 1, 'dreammesh_upgrades_total{mode="transparent"} counted it');
    alive();
  });

  test('an upgrade the upstream refuses keeps the connection serving; one closed after 101 closes the client', () => {
    const t = tag('refused');
    const r = appRaw([{ write: req('GET', `/upgrade-400?${t}`, wsHeaders(wsKey())) }, { awaitResponses: 1 }, { write: req('GET', `/${t}/after`) }], { untilResponses: 2 });
    assert.deepEqual(
      r.finals.map((m) => m.status),
      [400, 200],
      show(r),
    );
    const c = appRaw([{ write: req('GET', '/ws-close', wsHeaders(wsKey())) }], { ms: 3000 });
    assert.equal(c.finals[0]?.status, 101, show(c));
    assert.ok(c.closed, 'closed after the upstream closed');
    alive('after an upstream closed right after 101');
  });

  test('Upgrade: h2c is stripped: plain HTTP/1.1 upstream, 200 to the client', () => {
    const t = tag('h2c');
    const r = appRaw(
      [
        {
          write: req('GET', `/${t}`, [
            ['Connection', 'Upgrade, HTTP2-Settings'],
            ['Upgrade', 'h2c'],
            ['HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA'],
          ]),
        },
      ],
      { untilResponses: 1 },
    );
    assert.equal(r.finals[0]?.status, 200, show(r));
    const s = seenWith(t)[0]!;
    assert.equal(header(s, 'upgrade'), undefined, s.head);
    assert.equal(header(s, 'http2-settings'), undefined, s.head);
  });

  test('pipelining: 3 in one write and 1,000 on one connection, answered in order; half-close still answered', () => {
    const t = tag('pipe');
    const r = appRaw([{ write: [1, 2, 3].map((i) => req('GET', `/${t}/${i}`)).join('') }], { untilResponses: 3 });
    assert.deepEqual(
      r.finals.map((m) => (JSON.parse(m.body.toString()) as { target: string }).target),
      [1, 2, 3].map((i) => `/${t}/${i}`),
      show(r),
    );
    const many: string[] = [];
    for (let i = 0; i < 1000; i++) many.push(req('GET', `/${t}/m/${i}`));
    const m = appRaw([{ write: many.join('') }], { untilResponses: 1000, ms: 15_000 });
    assert.equal(m.finals.length, 1000, `answered ${m.finals.length} of 1000`);
    assert.ok(
      m.finals.every((x, i) => (JSON.parse(x.body.toString()) as { target: string }).target === `/${t}/m/${i}`),
      'in order',
    );
    const h = appRaw([{ write: req('POST', `/${t}/half`, [['Content-Length', '5']]) + 'hello' }, { end: true }]);
    assert.equal(h.finals[0]?.status, 200, show(h));
  });

  test('1xx, trailers both ways, gzip+chunked intact, HEAD/204/304, 1-byte writes', () => {
    const hints = appRaw([{ write: req('GET', '/hints') }], { untilResponses: 1 });
    assert.deepEqual(
      hints.responses.map((m) => m.status),
      [103, 200],
      show(hints),
    );
    const t = tag('trailers');
    const body = chunked(['abc', 'defg'], [['x-sum', '7']]);
    const tr = appRaw([{ write: Buffer.concat([Buffer.from(req('POST', `/${t}`, [['Transfer-Encoding', 'chunked']])), body]) }], { untilResponses: 1 });
    assert.equal(tr.finals[0]?.status, 200, show(tr));
    assert.equal(seenWith(t)[0]?.rawBody, body.toString('latin1'));
    const rt = appRaw([{ write: req('GET', '/trailers') }], { untilResponses: 1 });
    assert.deepEqual(rt.finals[0]?.trailers, [['x-checksum', '42']], show(rt));
    const g = tag('gzip');
    const gz = chunked([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), 'zzz']);
    const gr = appRaw([{ write: Buffer.concat([Buffer.from(req('POST', `/${g}`, [['Transfer-Encoding', 'gzip, chunked']])), gz]) }], { untilResponses: 1 });
    assert.equal(gr.finals[0]?.status, 200, show(gr));
    assert.equal(header(seenWith(g)[0]!, 'transfer-encoding'), 'gzip, chunked');
    assert.equal(seenWith(g)[0]?.rawBody, gz.toString('latin1'));
    const nb = appRaw([{ write: req('HEAD', '/h') + req('GET', '/204') + req('GET', '/304') + req('GET', '/after-no-body') }], { untilResponses: 4, methods: ['HEAD', 'GET', 'GET', 'GET'] });
    assert.deepEqual(
      nb.finals.map((m) => m.status),
      [200, 204, 304, 200],
      show(nb),
    );
    const d = tag('dribble');
    const dr = appRaw([{ write: `GET /${d}` }, { dribble: ` HTTP/1.1\r\nHost: ${dst()}\r\n\r\n` }], { untilResponses: 1, ms: 8000 });
    assert.equal(dr.finals[0]?.status, 200, show(dr));
  });

  describe('bad input: 400/431 with the code, the smuggled request never reaches the upstream, the process alive', () => {
    const cases: [string, (t: string) => string, number, string][] = [
      [
        'CL + TE',
        (t) =>
          req('POST', `/${t}`, [
            ['Content-Length', '5'],
            ['Transfer-Encoding', 'chunked'],
          ]) +
          '0\r\n\r\n' +
          req('GET', `/${t}-smuggled`),
        400,
        'MESH_ERR_BAD_REQUEST',
      ],
      [
        'two Content-Lengths',
        (t) =>
          req('POST', `/${t}`, [
            ['Content-Length', '0'],
            ['Content-Length', '40'],
          ]) + req('GET', `/${t}-smuggled`),
        400,
        'MESH_ERR_BAD_REQUEST',
      ],
      ['Content-Length: 1, 1', (t) => req('POST', `/${t}`, [['Content-Length', '1, 1']]) + 'x' + req('GET', `/${t}-smuggled`), 400, 'MESH_ERR_BAD_REQUEST'],
      ['obs-fold', (t) => req('GET', `/${t}`, [['X-Folded', 'a\r\n  Content-Length: 40']]) + req('GET', `/${t}-smuggled`), 400, 'MESH_ERR_BAD_REQUEST'],
      ['bare LF', (t) => req('GET', `/${t}`).replace(/\r\n/g, '\n') + req('GET', `/${t}-smuggled`), 400, 'MESH_ERR_BAD_REQUEST'],
      ['bad chunk size', (t) => req('POST', `/${t}`, [['Transfer-Encoding', 'chunked']]) + 'zz\r\nhello\r\n0\r\n\r\n' + req('GET', `/${t}-smuggled`), 400, 'MESH_ERR_BAD_REQUEST'],
      ['Transfer-Encoding: gzip', (t) => req('POST', `/${t}`, [['Transfer-Encoding', 'gzip']]) + 'abc' + req('GET', `/${t}-smuggled`), 400, 'MESH_ERR_BAD_REQUEST'],
      [
        '101 header fields',
        (t) =>
          req(
            'GET',
            `/${t}`,
            Array.from({ length: 100 }, (_, i) => [`x-h${i}`, 'v'] as [string, string]),
          ),
        431,
        'MESH_ERR_HEADERS_TOO_LARGE',
      ],
      [
        'a 16385-byte head',
        (t) => {
          const base = req('GET', `/${t}`, [['X-Pad', '']]);
          return req('GET', `/${t}`, [['X-Pad', 'p'.repeat(16385 - base.length)]]);
        },
        431,
        'MESH_ERR_HEADERS_TOO_LARGE',
      ],
      ['no Host', (t) => `GET /${t} HTTP/1.1\r\nX-A: b\r\n\r\n`, 400, 'MESH_ERR_BAD_HOST'],
    ];
    for (const [label, build, status, errCode] of cases) {
      test(label, () => {
        const t = tag('bad');
        const r = appRaw([{ write: build(t) }], { ms: 4000, untilResponses: 1 });
        assert.equal(r.finals[0]?.status, status, `${label}: ${show(r)}`);
        assert.equal(code(r.finals[0]), errCode, label);
        assert.equal(r.finals.length, 1, `${label}: one response: ${show(r)}`);
        assert.equal(seenWith(t).length, 0, `${label}: nothing reached the upstream`);
        alive(label);
      });
    }
    test('the head at exactly 16384 bytes is accepted', () => {
      const t = tag('exact');
      const base = req('GET', `/${t}`, [['X-Pad', '']]);
      const r = appRaw([{ write: req('GET', `/${t}`, [['X-Pad', 'p'.repeat(16384 - base.length)]]) }], { untilResponses: 1 });
      assert.equal(r.finals[0]?.status, 200, show(r));
    });
  });

  test('slowloris after detection (requestHeaderMs 1500): 408 MESH_ERR_REQUEST_HEADER_TIMEOUT, then close', () => {
    const r = appRaw([{ write: 'GET /slowloris HTTP/1.1\r\n' }, { dribble: `Host: ${dst()}\r\nX-Pad: ${'s'.repeat(30)}\r\n\r\n`, gapMs: 200 }], { ms: 8000 });
    assert.equal(r.finals[0]?.status, 408, show(r));
    assert.equal(code(r.finals[0]), 'MESH_ERR_REQUEST_HEADER_TIMEOUT');
    assert.ok(r.closed);
    assert.equal(seenWith('/slowloris').length, 0);
    alive('after slowloris');
  });

  test('downstreamIdleMs 1500: an idle keep-alive connection is closed; a body stalled after one byte gets 408 MESH_ERR_DOWNSTREAM_TIMEOUT', () => {
    const idle = appRaw([{ write: req('GET', '/idle-tp') }], { ms: 6000 });
    assert.equal(idle.finals[0]?.status, 200, show(idle));
    assert.ok(idle.closed && idle.ms >= 1300 && idle.ms < 5000, `closed after ${idle.ms} ms: ${show(idle)}`);
    const stalled = appRaw([{ write: req('POST', '/stalled-tp', [['Content-Length', '100']]) + 'x' }], { ms: 6000 });
    assert.equal(stalled.finals[0]?.status, 408, show(stalled));
    assert.equal(code(stalled.finals[0]), 'MESH_ERR_DOWNSTREAM_TIMEOUT');
    assert.ok(stalled.closed);
    alive('after a stalled body');
  });

  test('requestMs 500 for the service: an upstream that never answers gets 504 MESH_ERR_UPSTREAM_TIMEOUT on time', () => {
    const r = appRaw([{ write: req('GET', '/never') }], { untilResponses: 1, ms: 5000 });
    assert.equal(r.finals[0]?.status, 504, show(r));
    assert.equal(code(r.finals[0]), 'MESH_ERR_UPSTREAM_TIMEOUT');
    assert.ok(r.ms >= 450 && r.ms < 1500, `answered after ${r.ms} ms`);
    alive();
  });

  test('client faults, 5 of each: close mid-head, mid-body, mid-response, upstream cut mid-response — alive after all of them', () => {
    for (let i = 0; i < 5; i++) {
      appRaw([{ write: req('GET', '/mid-head', [['X-Long', 'l'.repeat(100)]]).slice(0, 50) }, { wait: 30 }, { destroy: true }]);
      appRaw([{ write: req('POST', '/mid-body', [['Content-Length', '100000']]) + 'x'.repeat(500) }, { wait: 30 }, { destroy: true }]);
      appRaw([{ write: req('GET', '/big/8000000') }, { wait: 30 }, { destroy: true }]);
      appRaw([{ write: req('GET', '/truncate') }], { ms: 2000 });
    }
    alive('after client faults');
  });

  test('no socket is left behind by anything above', async () => {
    alive();
    const start = Date.now();
    let now = sockets();
    while (Date.now() - start < 8000) {
      now = sockets();
      if (now.downstream === 0 && now.closeWait === 0 && now.fds - now.other <= baseline.fds - baseline.other + 2) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`sockets not released: now ${JSON.stringify(now)}, baseline ${JSON.stringify(baseline)}`);
  });
});
