// Signals on a real `dreammesh run` process: SIGHUP reloads the config without dropping a
// stream in flight (and moves a listener), an invalid file keeps the running config, two
// sidecars without an app share a host, and SIGTERM lets a CONNECT tunnel carry bytes until
// the drain deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { request } from 'undici';
import { stringify } from 'yaml';
import { spawnSidecar, withDefaults } from '../helpers/sidecar.js';
import { startUpstream } from '../helpers/upstream.js';
import { getJson, metricValue, rawExchange } from '../helpers/http.js';
import { until } from '../helpers/until.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('two sidecars without an app on one host both start, with no inbound listener', async () => {
  const a = await spawnSidecar({});
  const b = await spawnSidecar({});
  try {
    assert.equal(a.inbound, 'off');
    assert.equal(b.inbound, 'off');
    assert.match(a.stderr(), /inbound off \(no app\)/);
    const cfg = await getJson(`${a.adminUrl}/config`);
    assert.equal((cfg.body.config as { listeners: { inbound?: string } }).listeners.inbound, undefined);
  } finally {
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
  }
});

test('SIGHUP during a long stream: it completes, the new egress rule and listener apply, same pid; a bad file keeps serving', async () => {
  const stream = await startUpstream('stream', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const t = setInterval(() => {
      res.write(`chunk ${n}\n`);
      if (++n === 10) {
        clearInterval(t);
        res.end();
      }
    }, 150);
  });
  const outside = await startUpstream('outside');
  const cfg = { services: { stream: { endpoints: [stream.address] } }, egress: { policy: 'registry-only' } };
  const mesh = await spawnSidecar(cfg);
  try {
    const pid = mesh.child.pid;
    const denied = await request(`http://${mesh.outbound}/`, { headers: { host: outside.address } });
    assert.equal(denied.statusCode, 403);
    await denied.body.text();
    const long = await request(`http://${mesh.outbound}/`, { headers: { host: 'stream' } });
    assert.equal(long.statusCode, 200);
    const body = long.body.text();
    // New config: the outside host allowed, and the outbound listener moved to another port.
    const port = await freePort();
    await writeFile(mesh.configFile, stringify(withDefaults({ logLevel: 'warn', ...cfg, egress: { policy: 'registry-only', allow: [outside.address] }, listeners: { outbound: `127.0.0.1:${port}` } })));
    mesh.signal('SIGHUP');
    await until('the reload is in force', async () => (await getJson(`${mesh.adminUrl}/config`)).body.version === 2);
    assert.equal((await body).split('\n').filter(Boolean).length, 10, 'the stream in flight completed');
    const allowed = await request(`http://127.0.0.1:${port}/`, { headers: { host: outside.address } });
    assert.equal(allowed.statusCode, 200);
    await allowed.body.text();
    // A new connection to the old address is refused (established ones carried on, above).
    assert.equal(await rawExchange(mesh.outbound, 'GET / HTTP/1.1\r\nHost: stream\r\n\r\n', 500), '');
    assert.equal(mesh.child.pid, pid);
    assert.equal(mesh.child.exitCode, null);

    await writeFile(mesh.configFile, 'listeners: [not, a, mapping\n');
    mesh.signal('SIGHUP');
    await until('the failure is counted', async () => {
      const text = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
      return metricValue(text, 'dreammesh_config_reload_failures_total', { source: 'config' }) === 1;
    });
    assert.equal((await getJson(`${mesh.adminUrl}/config`)).body.version, 2);
    const still = await request(`http://127.0.0.1:${port}/`, { headers: { host: outside.address } });
    assert.equal(still.statusCode, 200);
    await still.body.text();
    assert.match(mesh.stderr(), /config reload rejected/);
  } finally {
    assert.equal(await mesh.stop(), 0);
    await stream.close();
    await outside.close();
  }
});

test('SIGTERM: a CONNECT tunnel carries bytes until the drain deadline, then is cut with MESH_ERR_DRAIN_TIMEOUT', async () => {
  const echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as AddressInfo).port;
  const mesh = await spawnSidecar({ egress: { policy: 'registry-only', allow: [`127.0.0.1:${echoPort}`] }, drainTimeoutMs: 1500 });
  const [host, port] = [mesh.outbound.slice(0, mesh.outbound.lastIndexOf(':')), Number(mesh.outbound.slice(mesh.outbound.lastIndexOf(':') + 1))];
  const s = connect({ host, port });
  let got = '';
  const closed = new Promise<number>((r) => s.once('close', () => r(Date.now())));
  s.on('data', (c: Buffer) => (got += c.toString('latin1')));
  s.on('error', () => {});
  try {
    s.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
    await until('the tunnel is established', () => got.includes('200 Connection Established'));
    const exited = new Promise<number | null>((r) => mesh.child.once('exit', (code) => r(code)));
    const signalled = Date.now();
    mesh.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    s.write('after-sigterm');
    await until('bytes written after SIGTERM come back', () => got.includes('after-sigterm'));
    // A new connection is refused meanwhile.
    assert.equal(await rawExchange(mesh.outbound, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 500), '');
    const cut = await closed;
    assert.ok(cut - signalled >= 1300, `cut after ${cut - signalled} ms, at the deadline`);
    assert.equal(await exited, 0);
    assert.match(mesh.stderr(), /MESH_ERR_DRAIN_TIMEOUT/);
  } finally {
    s.destroy();
    await mesh.stop();
    await new Promise<void>((r) => echo.close(() => r()));
  }
});

test('SIGINT: an upgraded connection keeps relaying after the signal, and the process exits as soon as it closes', async () => {
  const { createServer: createHttpServer } = await import('node:http');
  const ws = createHttpServer((_req, res) => res.end());
  ws.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    socket.pipe(socket);
  });
  await new Promise<void>((r) => ws.listen(0, '127.0.0.1', r));
  const wsAddress = `127.0.0.1:${(ws.address() as AddressInfo).port}`;
  const mesh = await spawnSidecar({ services: { ws: { endpoints: [wsAddress] } }, drainTimeoutMs: 8000 });
  const i = mesh.outbound.lastIndexOf(':');
  const s = connect({ host: mesh.outbound.slice(0, i), port: Number(mesh.outbound.slice(i + 1)) });
  let got = '';
  s.on('data', (c: Buffer) => (got += c.toString('latin1')));
  s.on('error', () => {});
  try {
    s.write('GET /chat HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    await until('the upgrade', () => got.includes('101 Switching Protocols'));
    const exited = new Promise<number | null>((r) => mesh.child.once('exit', (code) => r(code)));
    mesh.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    s.write('still-talking');
    await until('bytes after SIGINT come back', () => got.includes('still-talking'));
    const ended = Date.now();
    s.end();
    assert.equal(await exited, 0);
    assert.ok(Date.now() - ended < 4000, `the drain ended when the last connection did, not at the deadline: ${mesh.stderr()}`);
    assert.doesNotMatch(mesh.stderr(), /MESH_ERR_DRAIN_TIMEOUT/);
  } finally {
    s.destroy();
    await mesh.stop();
    await new Promise<void>((r) => ws.close(() => r()));
  }
});
