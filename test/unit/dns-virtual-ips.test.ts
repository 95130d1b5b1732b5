// Virtual IPs: deterministic first choice, linear probing, kept across restarts and while a
// service is gone, reassigned (logged) when the range changes, written atomically.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { VirtualIps } from '../../src/dns/virtual-ips.js';
import { meshServiceFor, meshSuffixes, serviceNames } from '../../src/dns/names.js';
import { parseUpstreams, resolvConfNameservers } from '../../src/dns/forwarder.js';
import { withoutSelf } from '../../src/dns/mesh-dns.js';

const silent = pino({ level: 'silent' });

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  return { log, lines };
}

test('first choice is deterministic; a collision probes to the next free address; network/last addresses never used', () => {
  const a = new VirtualIps({ cidr: '240.240.0.0/16', file: null, log: silent });
  const b = new VirtualIps({ cidr: '240.240.0.0/16', file: null, log: silent });
  a.assign(['users', 'cache']);
  b.assign(['cache', 'users']);
  assert.equal(a.v4('users'), b.v4('users'));
  assert.equal(a.v4('cache'), b.v4('cache'));
  assert.equal(a.service(a.v4('users')!), 'users');
  assert.equal(a.service(`::ffff:${a.v4('users')!}`), 'users');
  // A /30 has two usable addresses: the third service finds none.
  const tiny = new VirtualIps({ cidr: '10.9.9.0/30', file: null, log: silent });
  assert.deepEqual(tiny.assign(['a', 'b', 'c']), ['c']);
  const got = [tiny.v4('a'), tiny.v4('b')].sort();
  assert.deepEqual(got, ['10.9.9.1', '10.9.9.2']);
  assert.equal(tiny.service('10.9.9.0'), undefined);
  assert.equal(tiny.service('10.9.9.3'), undefined);
  // 300 services in a /23 (510 addresses): all distinct.
  const many = new VirtualIps({ cidr: '10.1.0.0/23', file: null, log: silent });
  const names = Array.from({ length: 300 }, (_, i) => `svc-${i}`);
  assert.deepEqual(many.assign(names), []);
  assert.equal(new Set(names.map((n) => many.v4(n))).size, 300);
});

test('kept across restarts and while a service is absent; a range change reassigns and is logged', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dm-vips-'));
  const file = join(dir, 'state', 'dns-vips.json');
  const first = new VirtualIps({ cidr: '240.240.0.0/16', file, log: silent });
  first.assign(['users', 'cache']);
  const users = first.v4('users')!;
  // The next start sees only "cache" for a while, then "users" comes back: same address.
  const second = new VirtualIps({ cidr: '240.240.0.0/16', file, log: silent });
  second.assign(['cache', 'orders']);
  assert.equal(second.v4('users'), users);
  const third = new VirtualIps({ cidr: '240.240.0.0/16', file, log: silent });
  assert.equal(third.v4('users'), users);
  assert.ok(third.v4('orders') !== undefined);
  // Nothing but the map itself is left in the directory (temp file renamed over it).
  assert.deepEqual(readdirSync(join(dir, 'state')), ['dns-vips.json']);
  const { log, lines } = capture();
  const moved = new VirtualIps({ cidr: '10.77.0.0/16', file, log });
  assert.equal(moved.v4('users'), undefined);
  moved.assign(['users']);
  assert.match(moved.v4('users')!, /^10\.77\./);
  assert.ok(lines.some((l) => l.includes('dns.cidr changed')));
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { cidr: string }).cidr, '10.77.0.0/16');
});

test('a corrupt map file is replaced, not fatal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dm-vips-'));
  const file = join(dir, 'dns-vips.json');
  writeFileSync(file, '{"format":"dreammesh-dns-vips/1","cid');
  const v = new VirtualIps({ cidr: '240.240.0.0/16', file, log: silent });
  v.assign(['users']);
  assert.ok(v.v4('users'));
  writeFileSync(file, JSON.stringify({ format: 'dreammesh-dns-vips/1', cidr: '240.240.0.0/16', services: { a: '240.240.0.0', b: 'x', c: '240.240.1.1', d: '240.240.1.1' } }));
  const w = new VirtualIps({ cidr: '240.240.0.0/16', file, log: silent });
  assert.equal(w.v4('a'), undefined, 'the network address is never handed out');
  assert.equal(w.v4('b'), undefined);
  assert.equal(w.v4('c'), '240.240.1.1');
  assert.equal(w.v4('d'), undefined, 'an address is never given twice');
});

test('AAAA addresses: same offset in dns.ipv6Cidr; bad ranges are config errors', () => {
  const v = new VirtualIps({ cidr: '240.240.0.0/16', ipv6Cidr: 'fd00:d3e5::/112', file: null, log: silent });
  v.assign(['users']);
  const off = Number(v.v4('users')!.split('.')[2]) * 256 + Number(v.v4('users')!.split('.')[3]);
  assert.equal(v.v6('users'), `fd00:d3e5::${off.toString(16)}`);
  assert.equal(v.service(v.v6('users')!), 'users');
  assert.equal(new VirtualIps({ cidr: '240.240.0.0/16', file: null, log: silent }).v6('users'), undefined);
  assert.throws(() => new VirtualIps({ cidr: 'fd00::/112', file: null, log: silent }), /dns.cidr: fd00::\/112 is not an IPv4 range/);
  assert.throws(() => new VirtualIps({ cidr: '240.240.0.0/31', file: null, log: silent }), /too small/);
  assert.throws(() => new VirtualIps({ cidr: '240.240.0.0/16', ipv6Cidr: 'fd00::/32', file: null, log: silent }), /between \/64 and \/120/);
});

test('mesh names: service, service.mesh, service.<suffix>, any case, trailing dot; unknown services are not mesh names', () => {
  const names = serviceNames(['users', 'Redis-Cache']);
  const suffixes = meshSuffixes(['svc.cluster.local', 'corp.example']);
  assert.equal(meshServiceFor('users', names, suffixes), 'users');
  assert.equal(meshServiceFor('USERS.mesh.', names, suffixes), 'users');
  assert.equal(meshServiceFor('redis-cache.svc.cluster.local', names, suffixes), 'Redis-Cache');
  assert.equal(meshServiceFor('users.corp.example', names, suffixes), 'users');
  assert.equal(meshServiceFor('orders.mesh', names, suffixes), undefined);
  assert.equal(meshServiceFor('users.example.com', names, suffixes), undefined);
  assert.equal(meshServiceFor('mesh', names, suffixes), undefined);
  assert.equal(meshServiceFor('', names, suffixes), undefined);
  assert.equal(meshServiceFor('.', names, suffixes), undefined);
});

test('upstream resolvers from resolv.conf and dns.upstreams', () => {
  assert.deepEqual(resolvConfNameservers('# c\nsearch x\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:1\n'), [
    { host: '10.0.0.2', port: 53 },
    { host: 'fe80::1', port: 53 },
  ]);
  assert.deepEqual(parseUpstreams(['1.1.1.1', '127.0.0.1:5353', '[::1]:53']), [
    { host: '1.1.1.1', port: 53 },
    { host: '127.0.0.1', port: 5353 },
    { host: '::1', port: 53 },
  ]);
  assert.throws(() => parseUpstreams(['dns.example:53']), /dns.upstreams: "dns.example:53" is not an ip or ip:port/);
});

test('an upstream that is the DNS listener itself is dropped (no forwarding loop)', () => {
  const ups = parseUpstreams(['127.0.0.1:53', '127.0.0.53', '10.0.0.2', '127.0.0.1:5353']);
  assert.deepEqual(
    withoutSelf(ups, '127.0.0.1:53', silent).map((u) => `${u.host}:${u.port}`),
    ['127.0.0.53:53', '10.0.0.2:53', '127.0.0.1:5353'],
  );
  assert.deepEqual(
    withoutSelf(ups, '0.0.0.0:53', silent).map((u) => `${u.host}:${u.port}`),
    ['10.0.0.2:53', '127.0.0.1:5353'],
  );
  assert.equal(withoutSelf(ups, '127.0.0.1:15053', silent).length, 4);
});
