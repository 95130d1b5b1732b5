// Sidecar.reload applies the whole config (services, routes, limits, an app and its inbound
// listener) and keeps what only a restart can change; watchConfig reloads on a file change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import type { ListenAddress } from '../../src/core/address.js';
import { parseConfigObject } from '../../src/config/load.js';
import { startSidecar, spawnSidecar, withDefaults } from '../helpers/sidecar.js';
import { startUpstream } from '../helpers/upstream.js';
import { getJson, rawExchange, viaSidecar } from '../helpers/http.js';
import { until } from '../helpers/until.js';

test('a reload adds services and routes, changes limits, brings up an inbound listener for a new app, and keeps restart-only sections', async () => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const app = await startUpstream('app');
  const base = { services: { users: { endpoints: [v1.address] } } };
  const mesh = await startSidecar(base);
  try {
    assert.equal((await viaSidecar(mesh.outbound, 'orders')).status, 404);
    const inboundOf = (): ListenAddress | undefined => mesh.sidecar.bound?.inbound;
    assert.equal(inboundOf(), undefined);
    const next = withDefaults({
      ...base,
      app: app.address,
      service: 'renamed',
      services: {
        users: { endpoints: [v1.address, { address: v2.address, labels: { version: 'v2' } }], routes: [{ match: { headers: { 'x-beta': 'yes' } }, split: [{ labels: { version: 'v2' }, weight: 1 }] }] },
        orders: { endpoints: [v2.address] },
      },
      limits: { maxHeaderBytes: 2048 },
    });
    const outcome = await mesh.sidecar.reload(parseConfigObject(next, 'reload'));
    assert.equal(outcome.version, 2);
    assert.deepEqual(outcome.keptUntilRestart, ['service']);
    assert.equal(mesh.sidecar.config.service, undefined, 'service only changes at restart');
    assert.equal((await viaSidecar(mesh.outbound, 'orders')).json<{ name: string }>().name, 'v2');
    assert.equal((await viaSidecar(mesh.outbound, 'users', '/', { headers: { 'x-beta': 'yes' } })).json<{ name: string }>().name, 'v2');
    const big = await rawExchange(mesh.outbound, `GET / HTTP/1.1\r\nHost: users\r\nx-pad: ${'a'.repeat(3000)}\r\nConnection: close\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431/, 'the new header limit applies');
    const inbound = inboundOf();
    assert.ok(inbound?.kind === 'tcp');
    const r = await request(`http://127.0.0.1:${inbound.port}/in`);
    assert.equal(((await r.body.json()) as { name: string }).name, 'app');
    // And back: no app, no inbound listener.
    await mesh.sidecar.reload(parseConfigObject(withDefaults(base), 'reload'));
    assert.equal(inboundOf(), undefined);
    assert.equal(await rawExchange(`127.0.0.1:${inbound.port}`, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 500), '', 'a new connection is refused');
  } finally {
    await mesh.stop();
    await Promise.all([v1.close(), v2.close(), app.close()]);
  }
});

test('a listener that cannot bind fails the reload and changes nothing', async () => {
  const up = await startUpstream('up');
  const mesh = await startSidecar({ services: { users: { endpoints: [up.address] } } });
  try {
    const taken = mesh.admin;
    const next = withDefaults({ services: {}, listeners: { outbound: taken } });
    await assert.rejects(mesh.sidecar.reload(parseConfigObject(next, 'reload')), /listeners\.outbound: cannot listen/);
    assert.equal((await getJson(`${mesh.adminUrl}/config`)).body.version, 1);
    assert.equal((await viaSidecar(mesh.outbound, 'users')).status, 200);
  } finally {
    await mesh.stop();
    await up.close();
  }
});

test('watchConfig: a changed file is reloaded without a signal', async () => {
  const up = await startUpstream('up');
  const mesh = await spawnSidecar({ watchConfig: true });
  try {
    assert.equal((await viaSidecar(mesh.outbound, 'users')).status, 404);
    await writeFile(mesh.configFile, stringify(withDefaults({ logLevel: 'warn', watchConfig: true, services: { users: { endpoints: [up.address] } } })));
    await until('the change is in force', async () => (await getJson(`${mesh.adminUrl}/config`)).body.version === 2);
    assert.equal((await viaSidecar(mesh.outbound, 'users')).status, 200);
  } finally {
    assert.equal(await mesh.stop(), 0);
    await up.close();
  }
});

test('a reload moves the access log to another file and changes the sampling', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-reload-log-'));
  const up = await startUpstream('up');
  const services = { users: { endpoints: [up.address] } };
  const first = join(dir, 'first.log');
  const second = join(dir, 'second.log');
  const mesh = await startSidecar({ services, accessLog: { enabled: true, path: first } });
  try {
    assert.equal((await viaSidecar(mesh.outbound, 'users', '/one')).status, 200);
    await mesh.sidecar.reload(parseConfigObject(withDefaults({ services, accessLog: { enabled: true, path: second } }), 'reload'));
    assert.equal((await viaSidecar(mesh.outbound, 'users', '/two')).status, 200);
    await mesh.stop();
    await until('both files are written', async () => (await readFile(first, 'utf8').catch(() => '')).includes('/one') && (await readFile(second, 'utf8').catch(() => '')).includes('/two'));
    assert.doesNotMatch(await readFile(first, 'utf8'), /\/two/);
  } finally {
    await mesh.stop();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
