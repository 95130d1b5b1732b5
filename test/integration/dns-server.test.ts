// The DNS server of a real sidecar, queried with dig (a real client) and with raw packets:
// mesh names → virtual IPs, other names forwarded to a fake upstream (UDP, TCP fallback on
// TC, SERVFAIL when it fails), malformed input answered or dropped, the sidecar alive after.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startFakeResolver, type FakeResolver } from '../helpers/fake-resolver.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { metricValue, viaSidecar } from '../helpers/http.js';

const pexec = promisify(execFile);

let mesh: RunningSidecar;
let upstream: FakeResolver;
let users: TestUpstream;
let port = 0;
let stateFile = '';

interface Dig {
  status: string;
  flags: string;
  answers: string[];
}

async function dig(name: string, type = 'A', extra: string[] = []): Promise<Dig> {
  const { stdout } = await pexec('dig', [`@127.0.0.1`, '-p', String(port), name, type, '+tries=1', '+time=3', '+noall', '+comments', '+answer', ...extra], { timeout: 10_000 });
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'none';
  const flags = /;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '';
  const answers = stdout
    .split('\n')
    .filter((l) => l.length > 0 && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).slice(3).join(' '));
  return { status, flags, answers };
}

function udpRaw(bytes: Buffer, ms = 700): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(null);
    }, ms);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(bytes, port, '127.0.0.1');
  });
}

function tcpRaw(bytes: Buffer, ms = 700): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => (closed = true));
    s.on('connect', () => s.write(bytes));
    setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed });
    }, ms);
  });
}

/** A query header (id 0x1234) with the given flags and counts, then `rest`. */
function header(flags: number, qd: number, rest: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x1234, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  return Buffer.concat([h, rest]);
}

/** Question section for `name`, `type`, class IN. */
function question(name: string, type: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([...labels, Buffer.from([0]), tail]);
}

const rcode = (b: Buffer | null): number => (b === null ? -1 : b[3]! & 0xf);

async function alive(): Promise<void> {
  const d = await dig('users');
  assert.equal(d.status, 'NOERROR');
  assert.deepEqual(d.answers, [`A ${mesh.sidecar.dns!.vips.v4('users')}`]);
}

describe('DNS server', () => {
  before(async () => {
    upstream = await startFakeResolver();
    users = await startUpstream('users');
    stateFile = join(mkdtempSync(join(tmpdir(), 'dm-dns-')), 'dns-vips.json');
    mesh = await startSidecar({
      services: { users: { endpoints: [users.address] }, 'Redis-Cache': { endpoints: ['127.0.0.1:1'] } },
      dns: { enabled: true, listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${upstream.port}`], upstreamTimeoutMs: 400, stateFile, ttl: 7 },
    });
    port = mesh.sidecar.dnsBound!.port;
  });
  after(async () => {
    await mesh?.stop();
    await upstream?.close();
    await users?.close();
  });

  test('mesh names answer with the service VIP: bare, .mesh, domain suffixes, any case, UDP and TCP; TTL from dns.ttl', async () => {
    const vip = mesh.sidecar.dns!.vips.v4('users')!;
    assert.match(vip, /^240\.240\.\d+\.\d+$/);
    for (const name of ['users', 'users.mesh', 'USERS.Mesh.', 'users.svc.cluster.local']) {
      const d = await dig(name);
      assert.equal(d.status, 'NOERROR', name);
      assert.deepEqual(d.answers, [`A ${vip}`], name);
      assert.match(d.flags, /\baa\b/);
    }
    assert.deepEqual((await dig('redis-cache', 'A', ['+tcp'])).answers, [`A ${mesh.sidecar.dns!.vips.v4('Redis-Cache')}`]);
    const { stdout } = await pexec('dig', ['@127.0.0.1', '-p', String(port), 'users', '+noall', '+answer']);
    assert.match(stdout, /^users\.\s+7\s+IN\s+A\s+240\.240\./m);
    assert.equal(upstream.seen.length, 0, 'mesh names are never forwarded');
  });

  test('other types for mesh names: AAAA (no ipv6Cidr), MX, TXT, unknown type → NOERROR without answers', async () => {
    for (const t of ['AAAA', 'MX', 'TXT', 'TYPE65280']) {
      const d = await dig('users.mesh', t);
      assert.equal(d.status, 'NOERROR', t);
      assert.deepEqual(d.answers, [], t);
    }
  });

  test('other names are forwarded: answer, NXDOMAIN, unknown services; truncated UDP answers retried over TCP for TCP clients', async () => {
    assert.deepEqual((await dig('ext.example')).answers, ['A 192.0.2.10']);
    assert.equal((await dig('nothing.example')).status, 'NXDOMAIN');
    // "orders" is not in the registry: not a mesh name.
    assert.equal((await dig('orders.mesh')).status, 'NXDOMAIN');
    assert.ok(upstream.seen.includes('orders.mesh'));
    const viaTcp = await dig('big.example', 'A', ['+tcp']);
    assert.equal(viaTcp.answers.length, 40);
    const viaUdp = await dig('big.example', 'A', ['+ignore']);
    assert.match(viaUdp.flags, /\btc\b/, 'a UDP client gets the TC answer and retries over TCP itself');
    // dig's own TCP retry after TC goes through us too.
    assert.equal((await dig('big.example')).answers.length, 40);
  });

  test('an upstream that does not answer → SERVFAIL after dns.upstreamTimeoutMs', async () => {
    const t0 = Date.now();
    const d = await dig('silent.example');
    assert.equal(d.status, 'SERVFAIL');
    assert.ok(Date.now() - t0 < 2500);
    const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
    assert.ok(metricValue(m, 'dreammesh_dns_queries_total', { outcome: 'servfail', qtype: 'A' }) >= 1);
    assert.ok(metricValue(m, 'dreammesh_dns_queries_total', { outcome: 'mesh', qtype: 'A' }) >= 4);
    assert.ok(metricValue(m, 'dreammesh_dns_queries_total', { outcome: 'forwarded', qtype: 'A' }) >= 3);
    await alive();
  });

  test('malformed UDP queries: FORMERR / NOTIMP with the query id, or dropped; never a crash', async () => {
    // Header only, one question announced but missing: FORMERR, same id.
    const formerr = await udpRaw(header(0x0100, 1));
    assert.equal(formerr?.readUInt16BE(0), 0x1234);
    assert.equal(rcode(formerr), 1);
    assert.equal(rcode(await udpRaw(header(0x0100, 2, Buffer.concat([question('users', 1), question('users', 1)])))), 1, 'two questions');
    assert.equal(rcode(await udpRaw(header(0x0100, 0))), 1, 'no question');
    assert.equal(rcode(await udpRaw(header(0x1000 | 0x0100, 1, question('users', 1)))), 4, 'opcode STATUS → NOTIMP');
    assert.equal(await udpRaw(header(0x8000, 1, question('users', 1))), null, 'a response sent to us is dropped');
    assert.equal(await udpRaw(Buffer.from([1, 2, 3, 4, 5])), null, 'shorter than a header: dropped');
    assert.equal(rcode(await udpRaw(header(0x0100, 1, Buffer.from([63, 1, 2])))), 1, 'truncated label');
    assert.equal(rcode(await udpRaw(header(0x0100, 1, Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])))), 1, 'compression pointer loop');
    // A valid question with an unknown type for a mesh name.
    const unk = await udpRaw(header(0x0100, 1, question('users', 0xff00)));
    assert.equal(rcode(unk), 0);
    assert.equal(unk!.readUInt16BE(6), 0, 'no answers');
    // Random garbage, bounded.
    let seed = 7;
    for (let i = 0; i < 200; i++) {
      const len = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 300;
      const b = Buffer.alloc(len);
      for (let k = 0; k < len; k++) b[k] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
      const s = createSocket('udp4');
      s.send(b, port, '127.0.0.1', () => s.close());
    }
    await alive();
  });

  test('malformed TCP: huge or tiny length prefixes, partial frames, pipelined queries', async () => {
    // A 65535-byte length prefix with a few bytes behind it: waits (bounded by the idle timeout), no answer.
    const huge = await tcpRaw(Buffer.from([0xff, 0xff, 1, 2, 3]));
    assert.equal(huge.data.length, 0);
    const tiny = await tcpRaw(Buffer.from([0x00, 0x05, 1, 2, 3, 4, 5]));
    assert.equal(tiny.data.length, 0);
    assert.ok(tiny.closed, 'a length below a DNS header closes the connection');
    const q = header(0x0100, 1, question('users', 1));
    const frame = Buffer.concat([Buffer.from([0, q.length]), q]);
    const two = await tcpRaw(Buffer.concat([frame, frame]));
    assert.equal(two.data.length, 2 * (2 + two.data.readUInt16BE(0)), 'two answers for two pipelined queries');
    // A full 65535-byte frame of junk: FORMERR, connection kept.
    const big = Buffer.alloc(65535, 0x41);
    big.writeUInt16BE(0x1234, 0);
    big.writeUInt16BE(0x0100, 2);
    const r = await tcpRaw(Buffer.concat([Buffer.from([0xff, 0xff]), big]), 1500);
    assert.equal(r.data.length >= 14 ? r.data[2 + 3]! & 0xf : -1, 1);
    await alive();
  });

  test('routing by VIP: a request whose Host is the VIP reaches the service', async () => {
    const vip = mesh.sidecar.dns!.vips.v4('users')!;
    const r = await viaSidecar(mesh.outbound, vip, '/by-vip');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-upstream'], 'users');
  });

  test('dns.ipv6Cidr: AAAA answered at the same offset, and the IPv6 VIP routes to the service', async () => {
    const v6 = await startSidecar({
      services: { users: { endpoints: [users.address] } },
      dns: { enabled: true, listen: '127.0.0.1:0', upstreams: [], ipv6Cidr: 'fd00:d3e5::/112', stateFile: join(mkdtempSync(join(tmpdir(), 'dm-dns6-')), 'v.json') },
    });
    try {
      const saved = port;
      port = v6.sidecar.dnsBound!.port;
      const vip6 = v6.sidecar.dns!.vips.v6('users')!;
      assert.match(vip6, /^fd00:d3e5::[0-9a-f]+$/);
      try {
        assert.deepEqual((await dig('users.mesh', 'AAAA')).answers, [`AAAA ${vip6}`]);
        assert.deepEqual((await dig('users', 'A')).answers, [`A ${v6.sidecar.dns!.vips.v4('users')}`]);
        assert.equal((await dig('elsewhere.example')).status, 'SERVFAIL', 'no upstreams: SERVFAIL');
      } finally {
        port = saved;
      }
      const r = await viaSidecar(v6.outbound, `[${vip6}]`, '/by-vip6');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-upstream'], 'users');
    } finally {
      await v6.stop();
    }
  });

  test('VIPs survive a service leaving and coming back (reload) and a restart', async () => {
    const vip = mesh.sidecar.dns!.vips.v4('users')!;
    const { parseConfigObject } = await import('../../src/config/load.js');
    const { withDefaults } = await import('../helpers/sidecar.js');
    const base = { dns: mesh.sidecar.config.dns, services: {} as Record<string, unknown> };
    await mesh.sidecar.reload(parseConfigObject(withDefaults({ ...base, services: { other: { endpoints: ['127.0.0.1:2'] } } })));
    assert.equal((await dig('users')).status, 'NXDOMAIN', 'a service not in the registry is forwarded');
    await mesh.sidecar.reload(parseConfigObject(withDefaults({ ...base, services: { users: { endpoints: [users.address] } } })));
    assert.deepEqual((await dig('users')).answers, [`A ${vip}`]);
    const again = await startSidecar({ services: { users: { endpoints: [users.address] } }, dns: { enabled: true, listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${upstream.port}`], stateFile } });
    try {
      assert.equal(again.sidecar.dns!.vips.v4('users'), vip);
      assert.ok(again.sidecar.dns!.vips.v4('other') !== undefined);
    } finally {
      await again.stop();
    }
  });
});
