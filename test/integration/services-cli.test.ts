// `dreammesh services list|get|put|rm` against a real etcd, and read-only over a file registry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { CLI } from '../helpers/sidecar.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd-server.js';
import { deadPort } from '../helpers/upstream.js';

const run = promisify(execFile);
let etcd: EtcdServer;
let dir: string;
before(async () => {
  etcd = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), 'dm-services-cli-'));
});
after(async () => {
  await etcd.stop();
  await rm(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [CLI, 'services', ...args]);
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

async function configFile(name: string, cfg: Record<string, unknown>): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, stringify(cfg));
  return f;
}

test('services put/list/get/rm against etcd', async () => {
  const cfg = await configFile('etcd.yaml', { services: { inline: { endpoints: ['127.0.0.1:9001'] } }, registry: { etcd: { endpoints: [etcd.url], prefix: '/cli/' } } });
  const [put1, put2, bad, usage] = await Promise.all([
    cli('put', 'users', '127.0.0.1:9100', '--label', 'version=v2', '--label', 'zone=a', '--weight', '3', '--config', cfg),
    cli('put', 'users', '127.0.0.1:9101', '--ttl', '30', '--config', cfg),
    cli('put', 'users', '0.0.0.0:80', '--config', cfg),
    cli('frobnicate', '--config', cfg),
  ]);
  let r = put1;
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\/cli\/services\/users\/127\.0\.0\.1:9100 = /);
  assert.equal(put2.code, 0, put2.err);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /MESH_ERR_CONFIG_INVALID: address: "0\.0\.0\.0:80" is not routable/);
  assert.equal(usage.code, 2);
  const stored = JSON.parse((await etcd.ctl('get', '--print-value-only', '/cli/services/users/127.0.0.1:9100')).trim()) as unknown;
  assert.deepEqual(stored, { address: '127.0.0.1:9100', weight: 3, labels: { version: 'v2', zone: 'a' } });
  await etcd.ctl('put', '/cli/services/users/bad', 'nope');

  let get: typeof r;
  let nobody: typeof r;
  [r, get, nobody] = await Promise.all([cli('list', '--json', '--config', cfg), cli('get', 'users', '--config', cfg), cli('get', 'nobody', '--config', cfg)]);
  assert.equal(r.code, 0, r.err);
  const rows = JSON.parse(r.out) as { service: string; address: string; source: string; leased?: boolean; weight: number }[];
  assert.deepEqual(
    rows.map((x) => `${x.service} ${x.address} ${x.source} ${x.leased ?? '-'} ${x.weight}`),
    ['inline 127.0.0.1:9001 config - 1', 'users 127.0.0.1:9100 etcd false 3', 'users 127.0.0.1:9101 etcd true 1'],
  );
  assert.match(r.err, /\/cli\/services\/users\/bad: malformed record ignored by sidecars: value is not JSON/);

  r = get;
  assert.equal(r.code, 0);
  assert.match(r.out, /^SERVICE\s+ADDRESS\s+WEIGHT\s+LABELS\s+SOURCE\n/);
  assert.match(r.out, /users\s+127\.0\.0\.1:9100\s+3\s+version=v2,zone=a\s+etcd\n/);
  assert.match(r.out, /users\s+127\.0\.0\.1:9101\s+1\s+-\s+etcd \(lease\)\n/);
  assert.equal(nobody.code, 1);

  let rmBad: typeof r;
  [r, rmBad] = await Promise.all([cli('rm', 'users', '127.0.0.1:9100', '--config', cfg), cli('rm', 'users', 'bad', '--config', cfg)]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /removed \/cli\/services\/users\/127\.0\.0\.1:9100/);
  assert.equal(rmBad.code, 0, 'a malformed record is removable by its id');
  r = await cli('rm', 'users', '127.0.0.1:9100', '--config', cfg);
  assert.equal(r.code, 1);
  assert.match(r.err, /no instance "127\.0\.0\.1:9100" of service "users"/);
});

test('services over a file registry lists, and says clearly that put/rm do not edit it; etcd down is a clear error', async () => {
  const services = join(dir, 'services.yaml');
  await writeFile(services, stringify({ services: { orders: { endpoints: [{ address: '127.0.0.1:9200', labels: { version: 'v1' } }] } } }));
  const cfg = await configFile('file.yaml', { registry: { file: services } });
  const down = await configFile('down.yaml', { registry: { etcd: { endpoints: [`http://127.0.0.1:${await deadPort()}`], dialTimeoutMs: 300 } } });
  const [list, put, unreachable] = await Promise.all([cli('list', '--config', cfg), cli('put', 'orders', '127.0.0.1:9201', '--config', cfg), cli('list', '--config', down)]);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /orders\s+127\.0\.0\.1:9200\s+1\s+version=v1\s+file/);
  assert.equal(put.code, 1);
  assert.match(put.err, /registry\.file is read-only here: edit .*services\.yaml \(running sidecars reload it\)/);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.err, /MESH_ERR_REGISTRY_UNAVAILABLE: etcd at http:\/\/127\.0\.0\.1:\d+: /);
});

test('registry.etcd.auth: username/password reach an etcd with auth enabled', async () => {
  await etcd.ctl('user', 'add', 'root', '--new-user-password=s3cret');
  await etcd.ctl('auth', 'enable');
  try {
    const good = await configFile('auth.yaml', { registry: { etcd: { endpoints: [etcd.url], prefix: '/auth/', auth: { username: 'root', password: 's3cret' } } } });
    const bad = await configFile('noauth.yaml', { registry: { etcd: { endpoints: [etcd.url], prefix: '/auth/', auth: { username: 'root', password: 'wrong' } } } });
    const put = await cli('put', 'users', '127.0.0.1:9300', '--config', good);
    assert.equal(put.code, 0, put.err);
    const [list, denied] = await Promise.all([cli('list', '--config', good), cli('list', '--config', bad)]);
    assert.match(list.out, /users\s+127\.0\.0\.1:9300/);
    assert.equal(denied.code, 1);
    assert.match(denied.err, /MESH_ERR_REGISTRY_UNAVAILABLE: .*authentication failed/i);
  } finally {
    await etcd.ctl('--user', 'root:s3cret', 'auth', 'disable');
  }
});
