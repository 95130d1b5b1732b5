// The packed package installed as a sidecar host would: `npm install --omit=optional`. It must
// stay small, build the native addon without node-gyp as a dependency, run a sidecar, and
// refuse a feature whose optional package is missing with MESH_ERR_OPTIONAL_DEPENDENCY.
// Real npm, real tarball, real processes; no loader mocks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { spawnSidecar } from '../helpers/sidecar.js';
import { rawExchange, viaSidecar } from '../helpers/http.js';
import { startUpstream } from '../helpers/upstream.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The promise made in the README: a lean install fits in this many MiB of node_modules. */
const MAX_MIB = 25;
const OPTIONAL = ['etcd3', 'undici', 'vega', 'vega-lite', 'dns-packet'];

/** npm with the test runner's npm_* settings removed, so the install is a plain user's. */
function npm(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/** Disk usage in bytes, counted the way `du` does (allocated blocks, links not followed). */
async function diskUsage(path: string): Promise<number> {
  const st = await lstat(path);
  if (!st.isDirectory()) return st.blocks * 512;
  let total = st.blocks * 512;
  for (const name of await readdir(path)) total += await diskUsage(join(path, name));
  return total;
}

let dir = '';
let app = '';
let skip: string | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dm-lean-'));
  app = join(dir, 'app');
  // dist/ is already built by the test run, so packing skips the prepare script.
  const packed = await npm(['pack', '--ignore-scripts', '--pack-destination', dir], ROOT);
  assert.equal(packed.code, 0, packed.out);
  const tarball = join(dir, packed.out.trim().split('\n').pop()!);
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'lean-app', version: '1.0.0', private: true }));
  const installed = await npm(['install', '--omit=optional', '--prefer-offline', '--no-audit', '--no-fund', tarball], app);
  if (installed.code !== 0 && /ENOTFOUND|EAI_AGAIN|ENOTCACHED|ECONNREFUSED|ETIMEDOUT|ECONNRESET/.test(installed.out)) {
    skip = 'the npm registry is unreachable and the cache lacks a package';
    return;
  }
  assert.equal(installed.code, 0, installed.out);
});

after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

const installedCli = (): string => join(app, 'node_modules/dreammesh/dist/src/cli/main.js');

test(`npm install --omit=optional: no optional package, node_modules at most ${MAX_MIB} MiB`, async (t) => {
  if (skip !== undefined) return t.skip(skip);
  for (const pkg of OPTIONAL) assert.equal(existsSync(join(app, 'node_modules', pkg)), false, `${pkg} was installed`);
  assert.equal(existsSync(join(app, 'node_modules/node-gyp')), false, 'node-gyp is not a runtime dependency');
  const mib = (await diskUsage(join(app, 'node_modules'))) / 2 ** 20;
  assert.ok(mib <= MAX_MIB, `node_modules is ${mib.toFixed(1)} MiB`);
});

test('the install script builds the native addon with npm’s own node-gyp', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  // Only where this machine can build it at all (the checkout's own build succeeded).
  if (!existsSync(join(ROOT, 'native/build/Release/original_dst.node'))) return t.skip('no native toolchain here');
  assert.ok(existsSync(join(app, 'node_modules/dreammesh/native/build/Release/original_dst.node')));
});

test('a sidecar from the lean install routes explicit and forward-proxy requests, with transparent mode enabled', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const up = await startUpstream('users');
  // transparent.enabled makes start-up load the addon: it refuses with MESH_ERR_NATIVE_MISSING otherwise.
  const transparent = existsSync(join(app, 'node_modules/dreammesh/native/build/Release/original_dst.node'));
  const m = await spawnSidecar({ services: { users: { endpoints: [up.address] } }, transparent: { enabled: transparent } }, { cli: installedCli() });
  try {
    const explicit = await viaSidecar(m.outbound, 'users', '/hello');
    assert.equal(explicit.status, 200);
    assert.equal(explicit.json().url, '/hello');
    const proxied = await rawExchange(m.outbound, 'GET http://users/proxied HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n');
    assert.match(proxied, /^HTTP\/1\.1 200 /);
    assert.match(proxied, /"url":"\/proxied"/);
  } finally {
    await m.stop();
    await up.close();
  }
});

const etcdConfig = { registry: { etcd: { endpoints: ['http://127.0.0.1:1'] } } };

test('registry.etcd without etcd3 installed: start fails with MESH_ERR_OPTIONAL_DEPENDENCY and the install command', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  await assert.rejects(spawnSidecar(etcdConfig, { cli: installedCli() }), (e: Error) => {
    assert.match(e.message, /exited with 1/);
    assert.match(e.message, /MESH_ERR_OPTIONAL_DEPENDENCY: registry\.etcd needs the optional package etcd3/);
    assert.match(e.message, /npm install etcd3@\^1\./);
    return true;
  });
});

test('registry.etcd without etcd3 installed: dreammesh validate refuses the config too', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const file = join(dir, 'etcd.yaml');
  await writeFile(file, stringify(etcdConfig));
  const r = spawnSync(process.execPath, [installedCli(), 'validate', file], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /registry\.etcd needs the optional package etcd3, which is not installed; install it with: npm install etcd3@/);
});

test('dns.enabled without dns-packet installed: start fails with MESH_ERR_OPTIONAL_DEPENDENCY and the install command', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  await assert.rejects(spawnSidecar({ dns: { enabled: true, listen: '127.0.0.1:0', upstreams: [] } }, { cli: installedCli() }), (e: Error) => {
    assert.match(e.message, /MESH_ERR_OPTIONAL_DEPENDENCY: dns\.enabled needs the optional package dns-packet/);
    assert.match(e.message, /npm install dns-packet@\^5\./);
    return true;
  });
});

test('bench report without vega installed: report.json and report.md are written, the charts are skipped with the reason', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const bench = join(app, 'node_modules/dreammesh/dist/bench');
  const { writeReport } = (await import(pathToFileURL(join(bench, 'write-report.js')).href)) as typeof import('../../bench/write-report.js');
  const { PROFILES } = (await import(pathToFileURL(join(bench, 'run-bench.js')).href)) as typeof import('../../bench/run-bench.js');
  const tp = (rps: number): { requests: number; errors: number; seconds: number; rps: number } => ({ requests: rps, errors: 0, seconds: 1, rps });
  const rows = [
    { mode: 'direct', title: 'direct', group: 'baseline', keepAlive: { builtin: tp(10000) } },
    { mode: 'explicit', title: 'explicit', group: 'explicit', keepAlive: { builtin: tp(5000) } },
  ] as const;
  const out = join(dir, 'bench-report');
  const r = await writeReport(out, { rows: [...rows], interrupted: false, generators: { wrk: false } }, PROFILES.quick);
  assert.deepEqual(r.files, ['report.json', 'report.md']);
  assert.match(r.chartsSkipped ?? '', /MESH_ERR_OPTIONAL_DEPENDENCY: bench charts needs the optional package vega, which is not installed; install it with: npm install vega@/);
  assert.ok(existsSync(join(out, 'report.md')));
});

test('dreammesh/client without undici installed: meshFetch rejects with MESH_ERR_OPTIONAL_DEPENDENCY', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  // Run from the app directory, so `dreammesh/client` resolves as an app's import would.
  const script = "import('dreammesh/client').then((m) => m.meshFetch('http://users/')).then(() => console.log('fetched'), (e) => console.log(e.code, e.message))";
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^MESH_ERR_OPTIONAL_DEPENDENCY dreammesh\/client needs the optional package undici, which is not installed; install it with: npm install undici@/);
});

test('dreammesh bench without undici installed: refuses before starting anything', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const out = join(dir, 'bench-refused');
  const r = spawnSync(process.execPath, [installedCli(), 'bench', '--quick', '--out', out], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /MESH_ERR_OPTIONAL_DEPENDENCY: dreammesh bench \(its load generator\) needs the optional package undici/);
  assert.equal(existsSync(out), false, 'nothing was run or written');
});
