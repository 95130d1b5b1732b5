// The native socket options over real sockets: SO_MARK is on an upstream socket from its first
// packet (IP literal and host name), and an IP_TRANSPARENT listener accepts. Setting either
// needs CAP_NET_ADMIN: skipped, with the reason printed, when not root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { dialTcp, socketMark, socketOptionsAvailable, transparentListenFd } from '../../src/steering/socket-options.js';

const skip = process.getuid?.() !== 0 ? 'needs root (CAP_NET_ADMIN) to set SO_MARK / IP_TRANSPARENT' : !socketOptionsAvailable() ? 'the native addon is not built' : null;
if (skip !== null) process.stdout.write(`# socket options: skipped: ${skip}\n`);

function echoServer(): Promise<Server> {
  const s = createServer((c) => c.pipe(c));
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}

function connected(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
}

test('dialTcp with a mark: the socket carries it, for an IP address and for a host name; bytes flow', { skip: skip ?? false }, async () => {
  const srv = await echoServer();
  const port = (srv.address() as AddressInfo).port;
  try {
    for (const host of ['127.0.0.1', 'localhost']) {
      const s = dialTcp({ host, port, mark: 0x539, noDelay: true });
      await connected(s);
      assert.equal(socketMark(s), 0x539, host);
      const echoed = new Promise<string>((r) => s.once('data', (b: Buffer) => r(b.toString())));
      s.write('ping');
      assert.equal(await echoed, 'ping');
      s.destroy();
    }
    const plain = dialTcp({ host: '127.0.0.1', port });
    await connected(plain);
    assert.equal(socketMark(plain), 0, 'no mark: a plain socket');
    plain.destroy();
  } finally {
    srv.close();
  }
});

test('dialTcp to a closed port with a mark fails like net.connect (ECONNREFUSED), nothing thrown synchronously', { skip: skip ?? false }, async () => {
  const srv = await echoServer();
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  const s = dialTcp({ host: '127.0.0.1', port, mark: 7 });
  await assert.rejects(connected(s), /ECONNREFUSED/);
});

test('an IP_TRANSPARENT listening socket made natively is served by node:net', { skip: skip ?? false }, async () => {
  const fd = transparentListenFd('127.0.0.1', 0);
  const srv = createServer((c) => c.end('hello'));
  await new Promise<void>((r) => srv.listen({ fd }, r));
  try {
    const port = (srv.address() as AddressInfo).port;
    assert.ok(port > 0);
    const s = dialTcp({ host: '127.0.0.1', port });
    const got = await new Promise<string>((r) => s.once('data', (b: Buffer) => r(b.toString())));
    assert.equal(got, 'hello');
    s.destroy();
  } finally {
    srv.close();
  }
  assert.throws(() => transparentListenFd('not-an-ip', 0), /host must be an IP address/);
});
