// h2load through explicit h2c: thousands of multiplexed streams over a few connections are all
// answered, spread over the three HTTP/2 endpoints, request bodies included (flow control on
// both hops), and the sidecar is alive with bounded memory afterwards. Load is bounded in count
// (-n) and time (timeout); speed is the bench's business (`dreammesh bench --h2`), not this test's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Http2Server } from 'node:http2';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { rssMiB } from '../../bench/proc-stats.js';

const run = promisify(execFile);

function whyNoH2load(): string | null {
  try {
    execFileSync('h2load', ['--version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'h2load is not installed (Debian package nghttp2-client; scripts/setup-system.sh installs it)';
  }
}
const skip = whyNoH2load();
if (skip !== null) process.stdout.write(`# h2-load: skipped: ${skip}\n`);

const servers: Http2Server[] = [];
const streams = [0, 0, 0];
const bodyBytes = [0, 0, 0];
let mesh: SpawnedSidecar | undefined;
let dir = '';

before(async () => {
  if (skip !== null) return;
  dir = mkdtempSync(join(tmpdir(), 'dm-h2load-'));
  for (let i = 0; i < 3; i++) {
    const s = createServer();
    s.on('stream', (st) => {
      streams[i]! += 1;
      st.on('data', (c: Buffer) => (bodyBytes[i]! += c.length));
      st.on('end', () => {
        st.respond({ ':status': 200, 'content-type': 'text/plain' });
        st.end(`server ${i}\n`);
      });
      st.on('error', () => {});
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  mesh = await spawnSidecar({ services: { web: { endpoints: servers.map((s) => `127.0.0.1:${(s.address() as { port: number }).port}`), lb: 'round-robin' } } });
});

after(async () => {
  await mesh?.stop();
  for (const s of servers) s.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

interface H2loadResult {
  total: number;
  succeeded: number;
  failed: number;
  errored: number;
  status2xx: number;
}

async function h2load(args: string[]): Promise<H2loadResult> {
  const { stdout } = await run('h2load', [...args, '-H', ':authority: web', `http://${mesh!.outbound}/load`], { timeout: 60_000, encoding: 'utf8' });
  const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  const codes = /status codes: (\d+) 2xx/.exec(stdout);
  assert.ok(req !== null && codes !== null, stdout);
  return { total: Number(req[1]), succeeded: Number(req[2]), failed: Number(req[3]), errored: Number(req[4]), status2xx: Number(codes[1]) };
}

test('h2load: 6,000 GETs over 4 connections, 16 streams each, all answered and spread over the three endpoints', { skip: skip ?? false }, async () => {
  const before = [...streams];
  const r = await h2load(['-n', '6000', '-c', '4', '-m', '16']);
  assert.deepEqual(r, { total: 6000, succeeded: 6000, failed: 0, errored: 0, status2xx: 6000 });
  const got = streams.map((n, i) => n - before[i]!);
  assert.equal(
    got.reduce((a, b) => a + b, 0),
    6000,
  );
  for (const n of got) assert.ok(n >= 1500, `each endpoint gets a share: ${got.join(', ')}`);
});

test('h2load: 600 POSTs with a 64 KiB body each (flow control on both hops) arrive whole', { skip: skip ?? false }, async () => {
  const file = join(dir, 'body.bin');
  writeFileSync(file, Buffer.alloc(64 * 1024, 0x61));
  const before = bodyBytes.reduce((a, b) => a + b, 0);
  const r = await h2load(['-n', '600', '-c', '2', '-m', '8', '-d', file]);
  assert.deepEqual(r, { total: 600, succeeded: 600, failed: 0, errored: 0, status2xx: 600 });
  assert.equal(bodyBytes.reduce((a, b) => a + b, 0) - before, 600 * 64 * 1024);
});

test('after the load the sidecar is alive, serves HTTP/1 and HTTP/2, and its memory is bounded', { skip: skip ?? false }, async () => {
  assert.equal(mesh!.child.exitCode, null);
  const live = await fetch(`${mesh!.adminUrl}/live`);
  assert.equal(live.status, 200);
  const r = await h2load(['-n', '10', '-c', '1']);
  assert.equal(r.succeeded, 10);
  const rss = rssMiB(mesh!.child.pid!);
  assert.ok(rss > 0 && rss < 400, `RSS ${rss.toFixed(0)} MiB`);
});
