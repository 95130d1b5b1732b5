// The loop guard judges canonical addresses: every spelling of a local address (and a name
// that resolves to one) with a listener's port is refused with 508 MESH_ERR_LOOP, in explicit
// mode, forward-proxy mode and CONNECT, even with egress.policy allow-any.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { rawExchange } from '../helpers/http.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const ALIASES = ['127.0.0.1', '127.1', '127.0.0.01', '2130706433', '0x7f000001', '0177.0.0.1', '0', '0.0.0.0', 'localhost', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]'];

let mesh: SpawnedSidecar;
let up: TestUpstream;

before(async () => {
  up = await startUpstream('outside');
  mesh = await spawnSidecar({ egress: { policy: 'allow-any' } });
});
after(async () => {
  await mesh.stop();
  await up.close();
});

const portOf = (a: string): string => a.slice(a.lastIndexOf(':') + 1);
const status = (reply: string): string => reply.slice(0, 12);
const errorCode = (reply: string): string | undefined => /x-dreammesh-error: (\S+)/i.exec(reply)?.[1];

for (const listener of ['admin', 'outbound'] as const) {
  test(`every alias of a local address with the ${listener} port is a loop (508) in explicit, proxy and CONNECT`, async () => {
    const port = portOf(mesh[listener]);
    for (const host of ALIASES) {
      const authority = `${host}:${port}`;
      const explicit = await rawExchange(mesh.outbound, `GET /config HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
      assert.equal(status(explicit), 'HTTP/1.1 508', `explicit ${authority}: ${explicit.slice(0, 80)}`);
      assert.equal(errorCode(explicit), 'MESH_ERR_LOOP');
      const proxy = await rawExchange(mesh.outbound, `GET http://${authority}/config HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
      assert.equal(status(proxy), 'HTTP/1.1 508', `proxy ${authority}: ${proxy.slice(0, 80)}`);
      const connect = await rawExchange(mesh.outbound, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      assert.equal(status(connect), 'HTTP/1.1 508', `CONNECT ${authority}: ${connect.slice(0, 80)}`);
    }
  });
}

test('a name that resolves to a loopback address is refused when it leads to a listener', async (t) => {
  // Any /etc/hosts name of 127.x other than localhost (which the guard knows without DNS).
  const hosts = await readFile('/etc/hosts', 'utf8').catch(() => '');
  const names = hosts
    .split('\n')
    .flatMap((l) => (/^127\.\S+\s/.test(l) ? l.trim().split(/\s+/).slice(1) : []))
    .filter((n) => n !== 'localhost' && !n.includes('localhost'));
  let name: string | undefined;
  for (const n of names) if ((await lookup(n).catch(() => null))?.address.startsWith('127.')) name = n;
  if (name === undefined) return t.skip('no loopback name besides localhost in /etc/hosts');
  const authority = `${name}:${portOf(mesh.admin)}`;
  const explicit = await rawExchange(mesh.outbound, `GET /config HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
  assert.equal(status(explicit), 'HTTP/1.1 508', explicit.slice(0, 200));
  const proxy = await rawExchange(mesh.outbound, `GET http://${authority}/config HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
  assert.equal(status(proxy), 'HTTP/1.1 508', proxy.slice(0, 200));
  const connect = await rawExchange(mesh.outbound, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  assert.equal(status(connect), 'HTTP/1.1 508', connect.slice(0, 200));
  // The same name to a port that is not ours goes through.
  const ok = await rawExchange(mesh.outbound, `GET http://${name}:${up.port}/ HTTP/1.1\r\nHost: ${name}:${up.port}\r\nConnection: close\r\n\r\n`);
  assert.equal(status(ok), 'HTTP/1.1 200', ok.slice(0, 200));
});

test('hosts that look numeric but are no address are refused as bad hosts, never resolved', async () => {
  for (const host of ['09', '1.2.3.4.5', '256.0.0.1']) {
    const r = await rawExchange(mesh.outbound, `GET / HTTP/1.1\r\nHost: ${host}:${portOf(mesh.admin)}\r\nConnection: close\r\n\r\n`);
    assert.equal(status(r), 'HTTP/1.1 400', `${host}: ${r.slice(0, 80)}`);
    assert.equal(errorCode(r), 'MESH_ERR_BAD_HOST');
  }
});

test("an upstream's x-dreammesh-error reaches the client renamed, never as the sidecar's own", async () => {
  const liar = await startUpstream('liar', (_req, res) => {
    res.writeHead(503, { 'x-dreammesh-error': 'MESH_ERR_NO_ROUTE' });
    res.end('not really');
  });
  try {
    const r = await rawExchange(mesh.outbound, `GET http://127.0.0.1:${liar.port}/ HTTP/1.1\r\nHost: 127.0.0.1:${liar.port}\r\nx-dreammesh-caller: admin\r\nConnection: close\r\n\r\n`);
    assert.equal(status(r), 'HTTP/1.1 503');
    assert.equal(errorCode(r), undefined);
    assert.match(r, /x-dreammesh-upstream-error: MESH_ERR_NO_ROUTE/i);
    assert.equal(liar.seen[0]?.headers['x-dreammesh-caller'], undefined, 'a claimed caller is not forwarded');
  } finally {
    await liar.close();
  }
});

test("a service whose endpoint is the sidecar's own admin listener is a loop, not a way to the admin API", async () => {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const { startSidecar } = await import('../helpers/sidecar.js');
  const own = await startSidecar({ listeners: { admin: `127.0.0.1:${port}` }, services: { sneaky: { endpoints: [`127.0.0.1:${port}`] } } });
  try {
    const r = await rawExchange(own.outbound, 'GET /config HTTP/1.1\r\nHost: sneaky\r\nConnection: close\r\n\r\n');
    assert.equal(status(r), 'HTTP/1.1 508', r.slice(0, 120));
    assert.equal(errorCode(r), 'MESH_ERR_LOOP');
  } finally {
    await own.stop();
  }
});
