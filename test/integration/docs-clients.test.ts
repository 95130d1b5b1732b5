// docs/clients.md, followed literally: the package is packed and installed into an empty app
// as the page says, the page's programs are written next to it, and every command block runs
// against a live sidecar over TCP and over a unix: socket. The `users` upstream must see each
// request; the page's conventions are described in test/helpers/markdown.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, blocks } from '../helpers/markdown.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const exec = promisify(execFile);
const PAGE = 'docs/clients.md';
const page = blocks(PAGE);

let dir: string;
let app: string;
let users: TestUpstream;
let overTcp: RunningSidecar;
let overUnix: RunningSidecar;
let installError: string | undefined;
/** Set when the offline install could not run at all (not a fault of the package). */
let cacheMiss: string | undefined;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

const run = (cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeout: number }): Promise<Outcome> =>
  exec(cmd, args, { ...opts, env: { ...process.env, ...opts.env }, maxBuffer: 16 * 1024 * 1024 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number | string; stdout?: string; stderr?: string; message: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message }),
  );

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dm-docs-clients-'));
  app = join(dir, 'app');
  users = await startUpstream('users');
  const services = { users: { endpoints: [users.address] } };
  overTcp = await startSidecar({ services });
  overUnix = await startSidecar({ services, listeners: { outbound: `unix:${join(dir, 'outbound.sock')}` } });
  // The install steps of the page: `npm pack` in the checkout (dist is already built by the
  // suite, so its prepare script is skipped), then `npm install <file>` in an empty app, from
  // the npm cache that `npm ci` filled (no network).
  const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, timeout: 120_000 });
  assert.equal(packed.code, 0, packed.stderr);
  await run('mkdir', ['-p', app], { cwd: dir, timeout: 5000 });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const installed = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(dir, `dreammesh-${version}.tgz`)], { cwd: app, timeout: 240_000 });
  if (installed.code !== 0 && /ENOTCACHED/.test(installed.stderr)) cacheMiss = 'the npm cache lacks a dependency (run `npm ci` once, which fills it; this test installs offline)';
  else if (installed.code !== 0) installError = `npm install of the packed package failed:\n${installed.stderr}`;
  for (const b of page) if (b.marker?.name === 'file') await writeFile(join(app, b.marker.arg), b.body);
});
after(async () => {
  await Promise.all([overTcp?.stop(), overUnix?.stop()]);
  await users?.close();
  await rm(dir, { recursive: true, force: true });
});

test('the install steps on the page are the ones this test performs, and give a working CLI', async (t) => {
  const install = page.find((b) => b.lang === 'sh' && /npm install /.test(b.body));
  assert.ok(install, `${PAGE} has an install block`);
  const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  assert.match(install.body, new RegExp(`^npm install \\S*/dreammesh-${version.replace(/\./g, '\\.')}\\.tgz`, 'm'), 'the page installs the file npm pack writes');
  if (cacheMiss !== undefined) return t.skip(cacheMiss);
  assert.equal(installError, undefined, installError);
  const help = await run('npx', ['--offline', 'dreammesh', '--help'], { cwd: app, timeout: 60_000 });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /usage: dreammesh <command>/);
});

const commands = page.filter((b) => b.lang === 'sh' && b.marker?.name !== 'not run');

test('the page has a command for each language it shows', () => {
  const tools = commands.map((b) => b.body.trim().split(/\s+/)[0]);
  for (const t of ['node', 'case', 'python3', 'java', 'go']) assert.ok(tools.includes(t), `a command block starting with ${t}`);
});

for (const b of commands) {
  const tool = b.body.trim().split(/\s+/)[0]!;
  const needs = tool === 'case' ? 'curl' : tool;
  for (const kind of ['tcp', 'unix'] as const) {
    test(`${PAGE}:${b.line} (${needs}) over ${kind}`, async (t) => {
      if (cacheMiss !== undefined) return t.skip(cacheMiss);
      assert.equal(installError, undefined, installError);
      const have = await run('sh', ['-c', `command -v ${needs}`], { cwd: app, timeout: 5000 });
      if (have.code !== 0) return t.skip(`${needs} is not installed here`);
      const outbound = kind === 'tcp' ? overTcp.outbound : overUnix.outbound;
      const before = users.seen.length;
      const r = await run('bash', ['-eo', 'pipefail', '-c', b.body], { cwd: app, env: { DREAMMESH_OUTBOUND: outbound }, timeout: 120_000 });
      if (kind === 'unix' && b.marker?.name === 'tcp only') {
        assert.notEqual(r.code, 0, 'a tcp-only client refuses a unix: outbound');
        assert.match(r.stderr, /needs a host:port/, 'and says why');
        assert.equal(users.seen.length, before);
        return;
      }
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
      assert.match(r.stdout, /^(200 )?\{"name":"users"/m, r.stdout);
      const seen = users.seen.slice(before);
      assert.equal(seen.length, 1, 'exactly one request reached users');
      assert.equal(seen[0]!.url, '/profile/42');
      assert.equal(seen[0]!.headers.host, 'users');
    });
  }
}
