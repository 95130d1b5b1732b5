// Transparent steering without kernel rules: a stand-in listener hands each accepted socket to
// handleTransparent with a chosen "original destination", exactly as the outbound listener does
// after SO_ORIGINAL_DST. The kernel part is covered by test/e2e/transparent.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type AddressInfo, type Socket } from 'node:net';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, deadPort, type TestUpstream } from '../helpers/upstream.js';
import { metricValue } from '../helpers/http.js';
import { handleTransparent } from '../../src/steering/transparent.js';
import { originalDstAvailable } from '../../src/steering/original-dst.js';
import { classify } from '../../src/detect/protocol.js';
import type { HostPort } from '../../src/core/sidecar-context.js';

let users: TestUpstream;
let echo: { server: Server; port: number };
let banner: { server: Server; port: number };
let bannerOpaque: { server: Server; port: number };
let mesh: RunningSidecar;
const fakes: Server[] = [];

/** TCP server: optional banner on connect, then echoes with a prefix. */
async function tcpServer(bannerText?: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    if (bannerText) s.write(bannerText);
    s.on('data', (c) => s.write(Buffer.concat([Buffer.from('echo:'), c])));
    s.on('end', () => s.end());
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A listener whose connections are "redirected" from `dst`. Returns its address. */
async function fakeRedirect(dst: HostPort): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => handleTransparent(mesh.sidecar.context, s, dst));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fakes.push(server);
  return (server.address() as AddressInfo).port;
}

function exchange(port: number, steps: { send?: string; waitMs?: number }[], totalMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, totalMs);
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('end', done);
    s.on('error', done);
    void (async () => {
      for (const st of steps) {
        if (st.waitMs) await new Promise((r) => setTimeout(r, st.waitMs));
        if (st.send !== undefined && !s.destroyed) s.write(Buffer.from(st.send, 'latin1'));
      }
    })();
  });
}

before(async () => {
  users = await startUpstream('users-1');
  echo = await tcpServer();
  banner = await tcpServer('220 banner ready\r\n');
  bannerOpaque = await tcpServer('220 opaque banner\r\n');
  mesh = await startSidecar({
    transparent: { enabled: true, detectTimeoutMs: 100, opaquePorts: [bannerOpaque.port] },
    services: {
      users: { endpoints: [users.address] },
      echo: { endpoints: [`127.0.0.1:${echo.port}`] },
      mail: { endpoints: [`127.0.0.1:${banner.port}`, `127.0.0.1:${bannerOpaque.port}`] },
    },
  });
});
after(async () => {
  for (const f of fakes) f.close();
  await mesh?.stop();
  await users.close();
  for (const s of [echo, banner, bannerOpaque]) s.server.close();
});

test('the addon is built, so transparent mode starts', () => {
  assert.equal(originalDstAvailable(), true);
});

test('classify: HTTP/1 methods, TLS, HTTP/2 preface, partial and binary input', () => {
  assert.equal(classify(Buffer.from('GET / HTTP/1.1\r\n')), 'http1');
  assert.equal(classify(Buffer.from('M-SEARCH * HTTP/1.1')), 'http1');
  assert.equal(classify(Buffer.from('G')), null);
  assert.equal(classify(Buffer.from('OPTIONS')), null);
  assert.equal(classify(Buffer.from([0x16, 0x03, 0x01, 0x00])), 'tls');
  assert.equal(classify(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), 'http2');
  assert.equal(classify(Buffer.from([0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f])), 'opaque');
  assert.equal(classify(Buffer.from('hello world, not http')), 'opaque');
});

test('HTTP/1 to an endpoint address is routed to that service (mode=transparent)', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: users.port });
  const reply = await exchange(port, [{ send: `GET /t HTTP/1.1\r\nHost: ${users.address}\r\nConnection: close\r\n\r\n` }]);
  assert.match(reply, /^HTTP\/1\.1 200/);
  assert.match(reply, /"name":"users-1"/);
  const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.ok(metricValue(m, 'dreammesh_requests_total', { mode: 'transparent', service: 'users', code: '200' }) >= 1);
  assert.ok(metricValue(m, 'dreammesh_detected_protocol_total', { protocol: 'http1' }) >= 1);
});

test('HTTP/1 keep-alive: two requests on one redirected connection both answer', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: users.port });
  const req = `GET /a HTTP/1.1\r\nHost: users\r\n\r\n`;
  const reply = await exchange(port, [{ send: req }, { waitMs: 100, send: req.replace('/a', '/b') }], 1000);
  assert.equal(reply.match(/HTTP\/1\.1 200/g)?.length, 2);
});

test('a server-first protocol works: silence becomes opaque after the detect timeout, banner arrives', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: banner.port });
  const reply = await exchange(port, [{ waitMs: 400, send: 'QUIT\r\n' }], 1200);
  assert.match(reply, /^220 banner ready\r\necho:QUIT\r\n$/);
});

test('opaquePorts skip detection: the banner comes without a detection (counted as opaque-port)', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: bannerOpaque.port });
  const before = metricValue(await (await fetch(`${mesh.adminUrl}/metrics`)).text(), 'dreammesh_detected_protocol_total', { protocol: 'opaque-port' });
  const reply = await exchange(port, [], 600);
  assert.equal(reply, '220 opaque banner\r\n');
  const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.equal(metricValue(m, 'dreammesh_detected_protocol_total', { protocol: 'opaque-port' }), before + 1);
});

test('a client-first binary protocol passes as opaque TCP, every byte intact', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: echo.port });
  const reply = await exchange(port, [{ send: '\x00\x00\x00\x08\x04\xd2\x16\x2f' }], 800);
  assert.equal(reply, 'echo:\x00\x00\x00\x08\x04\xd2\x16\x2f');
});

test('one byte then a stall: detection times out to opaque and the byte is not lost', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: echo.port });
  const reply = await exchange(port, [{ send: 'G' }, { waitMs: 400, send: 'ET' }], 1200);
  assert.equal(reply, 'echo:Gecho:ET');
});

test('a client that half-closes during detection still delivers its bytes', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: echo.port });
  const reply = await new Promise<string>((resolve) => {
    let got = '';
    const s = connect({ host: '127.0.0.1', port }, () => s.end('xyz'));
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.on('close', () => resolve(got));
    setTimeout(() => s.destroy(), 2000);
  });
  assert.equal(reply, 'echo:xyz');
});

test('opaque TCP to a non-mesh destination is closed under registry-only egress, and counted', async () => {
  const dead = await deadPort();
  const port = await fakeRedirect({ host: '127.0.0.1', port: dead });
  const reply = await exchange(port, [{ send: '\x01\x02' }], 1000);
  assert.equal(reply, '');
  const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.ok(metricValue(m, 'dreammesh_tunnels_total', { mode: 'transparent', kind: 'egress', outcome: 'denied' }) >= 1);
  assert.ok(metricValue(m, 'dreammesh_tunnels_total', { mode: 'transparent', kind: 'service', outcome: 'ok' }) >= 1);
});

test('HTTP/1 whose Host names no service is routed by the original destination when that is an endpoint', async () => {
  const port = await fakeRedirect({ host: '127.0.0.1', port: users.port });
  const reply = await exchange(port, [{ send: `GET /dns HTTP/1.1\r\nHost: users.internal.example:${users.port}\r\nConnection: close\r\n\r\n` }]);
  assert.match(reply, /^HTTP\/1\.1 200/);
  assert.match(reply, /"name":"users-1"/);
});

for (const viaOpaquePort of [false, true]) {
  test(`the sidecar's own upstream connection coming back captured is closed as a loop, not followed${viaOpaquePort ? ' (opaque port)' : ''}`, async () => {
    let accepted = 0;
    let m: RunningSidecar | undefined;
    const self = createServer({ allowHalfOpen: true }, (s) => {
      accepted++;
      // As if the rules captured everything, the sidecar's own connections included.
      handleTransparent(m!.sidecar.context, s, { host: '127.0.0.1', port: (self.address() as AddressInfo).port });
    });
    await new Promise<void>((r) => self.listen(0, '127.0.0.1', r));
    const selfPort = (self.address() as AddressInfo).port;
    m = await startSidecar({ transparent: { enabled: true, detectTimeoutMs: 50, opaquePorts: viaOpaquePort ? [selfPort] : [] }, egress: { policy: 'allow-any' } });
    try {
      const reply = await exchange(selfPort, [{ send: '\x01\x02\x03' }], 800);
      assert.equal(reply, '');
      assert.equal(accepted, 2, 'the client, then the sidecar itself once; no chain');
      const text = await (await fetch(`${m.adminUrl}/metrics`)).text();
      assert.equal(metricValue(text, 'dreammesh_tunnels_total', { mode: 'transparent', outcome: 'loop' }), 1);
    } finally {
      self.close();
      await m.stop();
    }
  });
}
