// Config is judged by one schema: clear errors naming the field, defaults filled in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { CLI } from '../helpers/sidecar.js';

const run = promisify(execFile);

test('the shape from the README is accepted and defaults are filled in', () => {
  const c = parseConfigText(`
listeners:
  outbound: 127.0.0.1:15001
  inbound: 0.0.0.0:15006
  admin: 127.0.0.1:15000
app: 127.0.0.1:8080
services:
  users:
    endpoints: [127.0.0.1:9101, {address: 127.0.0.1:9102, weight: 2, labels: {version: v2}}]
`);
  assert.equal(c.timeouts.connectMs, 1000);
  assert.equal(c.retries.attempts, 2);
  assert.equal(c.lb, 'least-request');
  assert.equal(c.services.users!.endpoints.length, 2);
  assert.ok(Object.isFrozen(c.services));
});

test('an unknown key is an error naming it', () => {
  assert.throws(() => parseConfigText('listeners:\n  outbund: 127.0.0.1:1\n'), /listeners\.outbund: unknown key/);
  assert.throws(() => parseConfigText('servces: {}\n'), /servces: unknown key/);
});

test('a bad value names the field', () => {
  assert.throws(() => parseConfigText('timeouts: {connectMs: -5}\n'), /timeouts\.connectMs/);
  assert.throws(() => parseConfigText('listeners: {outbound: "not an address"}\n'), /listeners\.outbound/);
  assert.throws(() => parseConfigText('services: {users: {endpoints: ["no-port"]}}\n'), /services\.users\.endpoints/);
});

test('text that is not YAML is a clear error with a position', () => {
  assert.throws(() => parseConfigText('services: {users: [\n', 'mesh.yaml'), /mesh\.yaml.*(line|YAML)/i);
});

test('dreammesh validate: exit 0 on a good file, 1 naming the field on a bad one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-validate-'));
  try {
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    await writeFile(good, 'services:\n  users:\n    endpoints: [127.0.0.1:9101]\n');
    await writeFile(bad, 'services:\n  users:\n    endpoint: [127.0.0.1:9101]\n');
    const ok = await run(process.execPath, [CLI, 'validate', good]);
    assert.match(ok.stdout, /valid \(1 inline service\)/);
    const err = await run(process.execPath, [CLI, 'validate', bad]).then(
      () => assert.fail('bad config accepted'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 1);
    assert.match(err.stderr, /services\.users\.endpoint: unknown key/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dreammesh schema prints a JSON Schema editors can use', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'schema']);
  const schema = JSON.parse(stdout) as { properties: Record<string, unknown> };
  assert.ok(schema.properties.listeners);
  assert.ok(schema.properties.services);
});

test('a service overriding one timeout keeps the other global values', () => {
  const c = parseConfigText('timeouts: {requestMs: 5000}\nservices:\n  users:\n    endpoints: [127.0.0.1:9101]\n    timeouts: {connectMs: 200}\n');
  assert.deepEqual({ ...c.services.users!.timeouts }, { connectMs: 200 });
  assert.equal(c.timeouts.requestMs, 5000);
  assert.equal(c.timeouts.connectMs, 1000, 'the global default is untouched by the override');
});

const splitConfig = (split: string): string => `services:\n  users:\n    endpoints: [127.0.0.1:9101]\n    routes:\n      - name: canary\n        split: ${split}\n`;

test('overlapping split selectors are refused, naming both fields', () => {
  assert.throws(
    () => parseConfigText(splitConfig('[{labels: {version: v2}, weight: 1}, {labels: {zone: eu}, weight: 99}]')),
    /services\.users\.routes\.0\.split\.1\.labels: \{zone: eu\} overlaps services\.users\.routes\.0\.split\.0\.labels \{version: v2\}/,
  );
  assert.throws(() => parseConfigText(splitConfig('[{labels: {}, weight: 1}, {labels: {}, weight: 99}]')), /split\.1\.labels: \{\} already appears at .*split\.0\.labels/);
  assert.throws(() => parseConfigText(splitConfig('[{labels: {version: v2}, weight: 0}, {weight: 0}]')), /routes\.0\.split: every weight is 0/);
});

test('disjoint selectors and one "the rest" entry are accepted', () => {
  const c = parseConfigText(splitConfig('[{labels: {version: v2}, weight: 1}, {labels: {version: v3, zone: eu}, weight: 1}, {weight: 98}]'));
  assert.deepEqual({ ...c.services.users!.routes![0]!.split![2]!.labels }, {}, 'labels defaults to {} (the rest)');
});

test('an etcd endpoint that is not http(s)://host:port is refused, naming it', () => {
  assert.throws(() => parseConfigText('registry:\n  etcd:\n    endpoints: [http://127.0.0.1:2379, etcd-without-port]\n'), /registry\.etcd\.endpoints\.1: "etcd-without-port" is not http\(s\):\/\/host:port/);
  assert.equal(parseConfigText('registry:\n  etcd:\n    endpoints: [https://etcd-1:2379, 127.0.0.1:2379]\n').registry.etcd!.endpoints.length, 2);
});

test('dreammesh schema requires no field that has a default, and a minimal config passes it', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'schema']);
  const schema = JSON.parse(stdout) as object;
  const offenders: string[] = [];
  const walk = (n: unknown, path: string): void => {
    if (n === null || typeof n !== 'object') return;
    const o = n as { required?: string[]; properties?: Record<string, { default?: unknown }> };
    for (const k of o.required ?? []) if (o.properties?.[k]?.default !== undefined) offenders.push(`${path}.${k}`);
    for (const [k, v] of Object.entries(n)) walk(v, `${path}.${k}`);
  };
  walk(schema, '');
  assert.deepEqual(offenders, []);
  const { Ajv } = await import('ajv');
  const validate = new Ajv().compile(schema);
  const minimal = { services: { users: { endpoints: ['127.0.0.1:9101'], routes: [{ split: [{ weight: 1 }] }] } } };
  assert.ok(validate(minimal), JSON.stringify(validate.errors));
  assert.ok(!validate({ services: { users: { endpoints: ['127.0.0.1:9101'], routes: [{ split: [{ labels: {} }] }] } } }), 'a split entry still needs its weight');
});
