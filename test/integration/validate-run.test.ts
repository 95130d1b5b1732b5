// `dreammesh validate` accepts only what `dreammesh run` can start, and a start that fails is
// one clear line: real CLI processes, real files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/sidecar.js';

const exec = promisify(execFile);
let dir: string;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in `dir` (relative paths in configs resolve there), bounded in time. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  return exec(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env }, timeout: 20_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dm-validate-run-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = 'listeners: { outbound: "127.0.0.1:0", admin: "127.0.0.1:0" }\nservices:\n  users: { endpoints: [127.0.0.1:9101] }\n';

test('a missing registry.file fails validate and run alike, with one line and nothing about draining', async () => {
  await writeFile(join(dir, 'mesh.yaml'), `${base}registry:\n  file: services.yaml\n`);
  const v = await cli(['validate', 'mesh.yaml']);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /registry\.file: cannot read services\.yaml: ENOENT/);
  const r = await cli(['run', '--config', 'mesh.yaml']);
  assert.equal(r.code, 1);
  assert.deepEqual(r.stderr.trim().split('\n'), ['dreammesh run: MESH_ERR_CONFIG_INVALID: registry.file: cannot read services.yaml: ENOENT']);
  assert.doesNotMatch(r.stderr + r.stdout, /draining/);
});

test('with the registry file present, validate passes and says what it checked and what it could not', async () => {
  await writeFile(join(dir, 'mesh.yaml'), `${base}registry:\n  file: services.yaml\n`);
  await writeFile(join(dir, 'services.yaml'), 'services:\n  orders: { endpoints: [127.0.0.1:9201] }\n');
  const v = await cli(['validate', 'mesh.yaml']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /checked: registry\.file services\.yaml \(1 service\)/);
  assert.match(v.stdout, /not checked: the listeners can bind/);
});

test('a registry file that sets policy is refused, naming the field, rather than silently ignored', async () => {
  await writeFile(join(dir, 'mesh.yaml'), `${base}registry:\n  file: policy.yaml\n`);
  await writeFile(join(dir, 'policy.yaml'), 'services:\n  orders:\n    endpoints: [127.0.0.1:9201]\n    lb: round-robin\n');
  const v = await cli(['validate', 'mesh.yaml']);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /policy\.yaml: services\.orders\.lb: a registry file carries endpoints only/);
});

test('transparent mode without the native addon: validate and run both name MESH_ERR_NATIVE_MISSING', async () => {
  await writeFile(join(dir, 'mesh.yaml'), `${base}transparent: { enabled: true }\n`);
  const env = { DREAMMESH_NATIVE_ADDON: join(dir, 'no-such-addon.node') };
  const v = await cli(['validate', 'mesh.yaml'], env);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /MESH_ERR_NATIVE_MISSING: transparent\.enabled is true .*no-such-addon\.node does not exist/);
  const r = await cli(['run', '--config', 'mesh.yaml'], env);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^dreammesh run: MESH_ERR_NATIVE_MISSING: /);
});

test('a unix listener in a directory that does not exist is caught before anything binds', async () => {
  await writeFile(join(dir, 'mesh.yaml'), `${base.replace('outbound: "127.0.0.1:0"', `outbound: "unix:${join(dir, 'nodir', 'out.sock')}"`)}`);
  const v = await cli(['validate', 'mesh.yaml']);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /listeners\.outbound: cannot listen on unix:.*nodir\/out\.sock: directory .*nodir does not exist/);
  const r = await cli(['run', '--config', 'mesh.yaml']);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, /draining/);
});

test('failOpen without a proxy uid is refused by validate before run would install anything', async () => {
  await writeFile(join(dir, 'mesh.yaml'), `${base}transparent: { enabled: true, failOpen: true }\n`);
  const v = await cli(['validate', 'mesh.yaml']);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /MESH_ERR_REDIRECT_INVALID: .*proxy-uid/);
});

test('inbound exists only with an app: listeners.inbound alone is an error, a non-loopback inbound a warning', async () => {
  await writeFile(join(dir, 'mesh.yaml'), 'listeners: { inbound: "127.0.0.1:0" }\n');
  const alone = await cli(['validate', 'mesh.yaml']);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /listeners\.inbound: set, but there is no app/);
  await writeFile(join(dir, 'mesh.yaml'), 'app: 127.0.0.1:8080\n');
  const open = await cli(['validate', 'mesh.yaml']);
  assert.equal(open.code, 0);
  assert.match(open.stderr, /warning: listeners\.inbound: 0\.0\.0\.0:15006 is reachable from other hosts and accepts unauthenticated clients/);
  await writeFile(join(dir, 'mesh.yaml'), 'app: 127.0.0.1:8080\nlisteners: { inbound: "127.0.0.1:15006" }\n');
  const loopback = await cli(['validate', 'mesh.yaml']);
  assert.equal(loopback.code, 0);
  assert.doesNotMatch(loopback.stderr, /warning/);
  await writeFile(join(dir, 'mesh.yaml'), 'services: {}\n');
  const none = await cli(['validate', 'mesh.yaml']);
  assert.match(none.stdout, /inbound: off \(no app\)/);
});
