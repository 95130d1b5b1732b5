// `dreammesh env` formatting: variables per mode, NO_PROXY → Java syntax, quoting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigObject } from '../../src/config/load.js';
import { meshEnv, formatEnv, javaNonProxyHosts, shQuote } from '../../src/cli/env.js';
import { childEnv } from '../../src/cli/exec.js';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('explicit mode prints DREAMMESH_OUTBOUND, unix sockets included', () => {
  assert.deepEqual(meshEnv(parseConfigObject({}), 'explicit'), [['DREAMMESH_OUTBOUND', '127.0.0.1:15001']]);
  assert.deepEqual(meshEnv(parseConfigObject({ listeners: { outbound: 'unix:/run/dm.sock' } }), 'explicit'), [['DREAMMESH_OUTBOUND', 'unix:/run/dm.sock']]);
  assert.deepEqual(meshEnv(parseConfigObject({ listeners: { outbound: '0.0.0.0:9001' } }), 'explicit'), [['DREAMMESH_OUTBOUND', '127.0.0.1:9001']]);
});

test('proxy mode prints proxies, lowercase twins, NO_PROXY with loopback and bypass, and Java options', () => {
  const c = parseConfigObject({ listeners: { outbound: '127.0.0.1:15101' }, egress: { bypass: ['.corp.example', 'db.local', '10.0.0.0/8', 'cache.local:6379', '172.16.0.0/12'] } });
  const env = Object.fromEntries(meshEnv(c, 'proxy'));
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) assert.equal(env[k], 'http://127.0.0.1:15101', k);
  assert.equal(env.NO_PROXY, 'localhost,127.0.0.1,::1,.corp.example,db.local,10.0.0.0/8,cache.local:6379,172.16.0.0/12');
  assert.equal(env.no_proxy, env.NO_PROXY);
  assert.equal(env.JAVA_TOOL_OPTIONS, '-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=15101 -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=15101 -Dhttp.nonProxyHosts=localhost|127.0.0.1|[::1]|*.corp.example|db.local|10.*');
});

test('Java nonProxyHosts translation', () => {
  assert.equal(javaNonProxyHosts(['.a.test', '*.b.test', 'c.test', '192.168.0.0/16', '1.2.3.4/32', 'fd00::1', 'h:80', '10.0.0.0/9']), '*.a.test|*.b.test|c.test|192.168.*|1.2.3.4|[fd00::1]');
});

test('a unix-socket outbound cannot be a proxy: clear error', () => {
  assert.throws(
    () => meshEnv(parseConfigObject({ listeners: { outbound: 'unix:/run/dm.sock' } }), 'proxy'),
    (e: Error & { code?: string }) => e.code === 'MESH_ERR_PROXY_NEEDS_TCP' && /Unix socket/.test(e.message),
  );
});

test('sh output survives a real shell, quotes and all', async () => {
  const vars: [string, string][] = [
    ['A', 'it\'s a "test" $HOME `x` \\ |*'],
    ['B', 'x y'],
  ];
  const script = formatEnv(vars, 'sh') + 'printf "%s\\n%s\\n" "$A" "$B"';
  const { stdout } = await run('sh', ['-c', script]);
  assert.equal(stdout, `${vars[0]![1]}\n${vars[1]![1]}\n`);
  assert.equal(shQuote("a'b"), `'a'\\''b'`);
});

test('dotenv and json formats', () => {
  const vars: [string, string][] = [
    ['P', 'http://127.0.0.1:1'],
    ['J', '-Da=1 -Db=x|y'],
  ];
  assert.equal(formatEnv(vars, 'dotenv'), 'P=http://127.0.0.1:1\nJ="-Da=1 -Db=x|y"\n');
  assert.deepEqual(JSON.parse(formatEnv(vars, 'json')), { P: 'http://127.0.0.1:1', J: '-Da=1 -Db=x|y' });
});

test("exec puts the app's own JAVA_TOOL_OPTIONS after ours", () => {
  const env = childEnv({ JAVA_TOOL_OPTIONS: '-Xmx1g', KEEP: '1' }, [
    ['JAVA_TOOL_OPTIONS', '-Dhttp.proxyHost=h'],
    ['HTTP_PROXY', 'http://h:1'],
  ]);
  assert.equal(env.JAVA_TOOL_OPTIONS, '-Dhttp.proxyHost=h -Xmx1g');
  assert.equal(env.KEEP, '1');
  assert.equal(env.HTTP_PROXY, 'http://h:1');
});

test('the CLI: --config FILE, --format, and usage errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-env-'));
  try {
    const file = join(dir, 'mesh.yaml');
    await writeFile(file, 'listeners:\n  outbound: 127.0.0.1:15222\negress:\n  bypass: [".corp.test"]\n');
    const { stdout } = await run(process.execPath, [bin, 'env', '--mode', 'proxy', '--config', file, '--format', 'json']);
    const env = JSON.parse(stdout) as Record<string, string>;
    assert.equal(env.HTTP_PROXY, 'http://127.0.0.1:15222');
    assert.equal(env.NO_PROXY, 'localhost,127.0.0.1,::1,.corp.test');
    const bad = await run(process.execPath, [bin, 'env', '--mode', 'magic']).then(
      () => assert.fail('expected failure'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--mode must be explicit or proxy/);
    await writeFile(file, 'listeners:\n  outbound: unix:/tmp/x.sock\n');
    const unix = await run(process.execPath, [bin, 'env', '--mode', 'proxy', '--config', file]).then(
      () => assert.fail('expected failure'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(unix.code, 1);
    assert.match(unix.stderr, /MESH_ERR_PROXY_NEEDS_TCP/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
