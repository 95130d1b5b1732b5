// `dreammesh exec`: the command runs with the mesh environment, reaches services through the
// sidecar, and its exit code and signals are passed through.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startSidecar, CLI, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
let users: TestUpstream;
let mesh: RunningSidecar;
let dir: string;
let configFile: string;

const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy', 'DREAMMESH_OUTBOUND', 'JAVA_TOOL_OPTIONS']) delete env[k];
  return env;
};

before(async () => {
  users = await startUpstream('users');
  mesh = await startSidecar({ services: { users: { endpoints: [users.address] } } });
  dir = await mkdtemp(join(tmpdir(), 'dm-exec-'));
  configFile = join(dir, 'mesh.yaml');
  await writeFile(configFile, stringify({ listeners: { outbound: mesh.outbound } }));
});
after(async () => {
  await mesh.stop();
  await users.close();
  await rm(dir, { recursive: true, force: true });
});

function dm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [CLI, ...args], { env: cleanEnv() }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

test('exec --mode proxy: curl reaches a mesh service by name with no flags of its own', async () => {
  const r = await dm(['exec', '--mode', 'proxy', '--config', configFile, '--', 'curl', '-s', 'http://users/from-exec']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { url: string }).url, '/from-exec');
});

test('exec --mode explicit sets DREAMMESH_OUTBOUND only', async () => {
  const r = await dm(['exec', '--mode', 'explicit', '--config', configFile, '--', 'sh', '-c', 'echo "$DREAMMESH_OUTBOUND|${HTTP_PROXY:-none}"']);
  assert.equal(r.stdout, `${mesh.outbound}|none\n`);
});

test('the exit code is passed through; death by signal is 128+n', async () => {
  assert.equal((await dm(['exec', '--mode', 'proxy', '--config', configFile, '--', 'sh', '-c', 'exit 7'])).code, 7);
  assert.equal((await dm(['exec', '--mode', 'proxy', '--config', configFile, '--', 'sh', '-c', 'kill -KILL $$'])).code, 137);
  const missing = await dm(['exec', '--mode', 'proxy', '--config', configFile, '--', 'no-such-command-dm']);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /cannot run "no-such-command-dm": ENOENT/);
});

test('usage errors: no command, bad mode, unix outbound in proxy mode', async () => {
  const none = await dm(['exec', '--mode', 'proxy']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no command given after --/);
  const bad = await dm(['exec', '--mode', 'tunnel', '--', 'true']);
  assert.equal(bad.code, 2);
  const unixCfg = join(dir, 'unix.yaml');
  await writeFile(unixCfg, 'listeners:\n  outbound: unix:/tmp/dm-exec-test.sock\n');
  const unix = await dm(['exec', '--mode', 'proxy', '--config', unixCfg, '--', 'true']);
  assert.equal(unix.code, 1);
  assert.match(unix.stderr, /MESH_ERR_PROXY_NEEDS_TCP/);
});

/** Starts `dreammesh exec -- node -e script`, resolves once the child printed "ready". */
async function startExec(script: string): Promise<{ child: ReturnType<typeof spawn>; out: () => string; exit: Promise<{ code: number | null; signal: string | null }> }> {
  const child = spawn(process.execPath, [CLI, 'exec', '--mode', 'proxy', '--config', configFile, '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 10_000;
  while (!out.includes('ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.match(out, /ready/);
  return { child, out: () => out, exit };
}

test('SIGTERM to dreammesh is forwarded to the child, whose exit code comes back', async () => {
  const e = await startExec("process.on('SIGTERM', () => { console.log('child got SIGTERM'); process.exit(3); }); setInterval(() => {}, 1000); console.log('ready')");
  e.child.kill('SIGTERM');
  const r = await e.exit;
  assert.deepEqual(r, { code: 3, signal: null });
  assert.match(e.out(), /child got SIGTERM/);
});

test('a child without a SIGTERM handler dies of it and dreammesh exits 143', async () => {
  const e = await startExec("setInterval(() => {}, 1000); console.log('ready')");
  e.child.kill('SIGTERM');
  const r = await e.exit;
  assert.deepEqual(r, { code: 143, signal: null });
});
