// DNS for mesh names with real kernel rules, inside network namespaces this test creates:
// the app (uid 1001) in the client namespace resolves `users` and `cache` through captured
// port 53 (the sidecar's DNS listener answers with virtual IPs), then `curl http://users/` and
// a raw TCP client to cache:6379 reach the service endpoints in the server namespace through
// the captured VIP. The namespace's resolv.conf (/etc/netns/<ns>/resolv.conf, bind-mounted by
// `ip netns exec`) names a nameserver that does not answer: only capture makes names work.
// The sidecar forwards other names to a fake resolver (dns.upstreams). Every backend.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, startInNetns, startServers, whyNoNetns, type NetnsPair } from '../helpers/netns.js';
import { spawnSidecar, CLI, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricValue } from '../helpers/http.js';

const skip = whyNoNetns();
if (skip !== null) process.stdout.write(`# e2e dns: skipped: ${skip}\n`);

const APP = ['setpriv', '--reuid=1001', '--regid=1001', '--clear-groups'];
const TCP_CLIENT = fileURLToPath(new URL('../helpers/tcp-client.js', import.meta.url));
const RESOLVER = fileURLToPath(new URL('../helpers/fake-resolver.js', import.meta.url));
const BACKENDS = ['iptables-nft', 'iptables-legacy', 'nftables'] as const;

let net: NetnsPair;
let servers: ChildProcess | undefined;
let resolver: ChildProcess | undefined;
let mesh: SpawnedSidecar | undefined;
let netnsEtc = '';
let stateDir = '';
let madeEtcNetns = false;

function rmdirIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    /* gone or not empty */
  }
}

function cfg(): Record<string, unknown> {
  return {
    listeners: { outbound: '127.0.0.1:15001', admin: '127.0.0.1:15000' },
    transparent: { enabled: true, detectTimeoutMs: 100, redirect: { proxyUid: 0, captureDns: true } },
    services: {
      users: { endpoints: [`${net.serverIp}:8080`, `${net.serverIp}:9090`], lb: 'round-robin' },
      cache: { endpoints: [`${net.serverIp}:6379`] },
    },
    dns: { enabled: true, listen: '127.0.0.1:15053', upstreams: [`${net.serverIp}:53`], upstreamTimeoutMs: 1000, stateFile: `${stateDir}/dns-vips.json` },
  };
}

function snapshot(): string {
  const parts: string[] = [];
  for (const cmd of [['iptables-nft-save'], ['iptables-legacy-save'], ['ip6tables-nft-save'], ['nft', 'list', 'ruleset']]) {
    const r = net.try(net.client, cmd);
    parts.push(
      `## ${cmd.join(' ')}\n` +
        r.stdout
          .split('\n')
          .filter((l) => !l.startsWith('#'))
          .map((l) => l.replace(/\[\d+:\d+\]/g, '[]').replace(/counter packets \d+ bytes \d+/g, 'counter'))
          .join('\n'),
    );
  }
  return parts.join('\n');
}

/**
 * Rules "another tool" had before us (as in transparent.test.ts): they must survive install +
 * uninstall untouched. (They also create iptables-legacy's nat table, which the kernel keeps
 * once it exists, so "as before" is a comparable state.)
 */
function addForeignRules(backend: (typeof BACKENDS)[number]): void {
  if (backend === 'nftables') {
    net.sh(net.client, ['nft', '-f', '-'], { input: 'table inet othertool {\n chain out {\n  type filter hook output priority 0; policy accept;\n  udp dport 53 counter\n }\n}\n' });
  } else {
    net.sh(net.client, [backend, '-t', 'nat', '-A', 'OUTPUT', '-p', 'udp', '--dport', '53', '-d', '192.0.2.1/32', '-j', 'RETURN']);
  }
}

function redirect(args: string[]): { status: number; stdout: string; stderr: string } {
  return net.try(net.client, [process.execPath, CLI, 'redirect', ...args]);
}

function getent(prefix: string[], name: string): { status: number; address: string } {
  const r = net.try(net.client, [...prefix, 'getent', 'ahostsv4', name]);
  return { status: r.status, address: r.stdout.split(/\s+/)[0] ?? '' };
}

/** The VIP straight from the sidecar's DNS listener (root, not captured). */
function vipOf(name: string): string {
  return net.sh(net.client, ['dig', '@127.0.0.1', '-p', '15053', name, '+short', '+tries=1', '+time=2']).trim();
}

function metrics(): string {
  return net.sh(net.client, ['curl', '-s', '-m', '5', 'http://127.0.0.1:15000/metrics']);
}

function startResolver(): Promise<ChildProcess> {
  return startInNetns(net.server, RESOLVER, [net.serverIp, '53', net.serverIp2], 'resolver');
}

describe('DNS for mesh names in network namespaces', { skip: skip ?? false }, () => {
  before(async () => {
    net = createNetnsPair('dn');
    netnsEtc = `/etc/netns/${net.client}`;
    stateDir = `/tmp/dm-dns-e2e-${process.pid}`;
    madeEtcNetns = !existsSync('/etc/netns');
    mkdirSync(netnsEtc, { recursive: true });
    // Nothing answers DNS at serverIp2: without capture, names do not resolve at all.
    writeFileSync(`${netnsEtc}/resolv.conf`, `nameserver ${net.serverIp2}\noptions timeout:1 attempts:1\n`);
    // The VIP range must be routable for connect() to reach the capture rules (a default route would do).
    net.sh(net.client, ['ip', 'route', 'add', '240.240.0.0/16', 'via', net.serverIp]);
    servers = await startServers(net.server);
    resolver = await startResolver();
    mesh = await spawnSidecar(cfg(), { prefix: ['ip', 'netns', 'exec', net.client] });
  });
  after(async () => {
    await mesh?.stop();
    servers?.kill('SIGKILL');
    resolver?.kill('SIGKILL');
    net?.destroy();
    rmSync(netnsEtc, { recursive: true, force: true });
    // /etc/netns itself only when this test made it and nothing else is in it.
    if (madeEtcNetns) rmdirIfEmpty('/etc/netns');
    rmSync(stateDir, { recursive: true, force: true });
  });

  for (const backend of BACKENDS) {
    describe(`backend ${backend}`, () => {
      let pristine = '';
      before(() => {
        addForeignRules(backend);
        pristine = snapshot();
      });
      after(() => {
        redirect(['uninstall']);
      });

      test('install --capture-dns; show matches the config', () => {
        const r = redirect(['install', '--config', mesh!.configFile, '--backend', backend, '--capture-dns']);
        assert.equal(r.status, 0, r.stderr);
        const s = redirect(['show', '--config', mesh!.configFile, '--backend', backend]);
        assert.equal(s.status, 0, s.stdout + s.stderr);
        assert.match(s.stdout, /matches config: yes/);
      });

      test("getent hosts users returns the VIP for the app; the proxy uid's own lookups are not captured; other names are forwarded", () => {
        const vip = vipOf('users');
        assert.match(vip, /^240\.240\.\d+\.\d+$/);
        assert.deepEqual(getent(APP, 'users'), { status: 0, address: vip });
        assert.equal(net.try(net.client, [...APP, 'getent', 'hosts', 'users']).stdout.split(/\s+/)[0], vip);
        assert.equal(getent(APP, 'cache.mesh').address, vipOf('cache'));
        assert.equal(getent(APP, 'ext.example').address, net.serverIp2, 'forwarded to dns.upstreams');
        assert.notEqual(getent([], 'users').status, 0, 'root is the proxy uid: its query goes to the real nameserver, which does not answer');
      });

      test('curl http://users/ by name reaches the endpoints through the captured VIP, balanced', () => {
        const ports = new Set<number>();
        for (let i = 0; i < 4; i++) {
          const r = net.try(net.client, [...APP, 'curl', '-s', '-m', '5', 'http://users/dns']);
          assert.equal(r.status, 0, r.stdout + r.stderr);
          const body = JSON.parse(r.stdout) as { port: number; url: string; headers: Record<string, string> };
          assert.equal(body.url, '/dns');
          assert.match(body.headers.via ?? '', /dreammesh-/, 'through the sidecar');
          ports.add(body.port);
        }
        assert.deepEqual([...ports].sort(), [8080, 9090]);
        // Host: the VIP itself (an app that resolved and kept the address) routes by the original destination.
        const vip = vipOf('users');
        const r = net.try(net.client, [...APP, 'curl', '-s', '-m', '5', '-H', `Host: ${vip}`, `http://${vip}/`]);
        assert.equal(r.status, 0, r.stderr);
        assert.ok([8080, 9090].includes((JSON.parse(r.stdout) as { port: number }).port));
      });

      test('a raw TCP client to cache:6379 by name reaches the cache endpoint (opaque port)', () => {
        const before = metricValue(metrics(), 'dreammesh_tunnels_total', { mode: 'transparent', kind: 'service', outcome: 'ok' });
        const out = JSON.parse(net.sh(net.client, [...APP, process.execPath, TCP_CLIENT, 'cache', '6379', JSON.stringify([{ send: 'PING\r\n' }]), '1500'])) as string;
        assert.equal(out, '+PONG\r\n');
        // Any port of the VIP goes to the endpoint's registered port (documented).
        const other = JSON.parse(net.sh(net.client, [...APP, process.execPath, TCP_CLIENT, 'cache', '7777', JSON.stringify([{ send: 'PING\r\n' }]), '1500'])) as string;
        assert.equal(other, '+PONG\r\n');
        assert.ok(metricValue(metrics(), 'dreammesh_tunnels_total', { mode: 'transparent', kind: 'service', outcome: 'ok' }) >= before + 1);
      });

      test('uninstall leaves the ruleset exactly as before; names stop resolving for the app', () => {
        const u = redirect(['uninstall']);
        assert.equal(u.status, 0, u.stderr);
        assert.equal(snapshot(), pristine);
        assert.notEqual(getent(APP, 'users').status, 0);
      });
    });
  }

  // proxyMark instead of a proxy uid: the sidecar runs as the app's own uid, so only the mark on
  // its forwarding sockets keeps their port-53 packets from being captured back to itself.
  describe('a sidecar running as the app uid with proxyMark (nftables)', () => {
    let marked: SpawnedSidecar | undefined;
    before(async () => {
      const c = cfg();
      marked = await spawnSidecar(
        {
          ...c,
          listeners: { outbound: '127.0.0.1:15101', admin: '127.0.0.1:15100' },
          transparent: { enabled: true, detectTimeoutMs: 100, redirect: { proxyMark: 0x539, captureDns: true } },
          dns: { ...(c.dns as Record<string, unknown>), listen: '127.0.0.1:15153', stateFile: `${stateDir}/marked-vips.json` },
        },
        { prefix: ['ip', 'netns', 'exec', net.client, ...APP, '--inh-caps=+net_admin', '--ambient-caps=+net_admin'], readable: true },
      );
      const r = redirect(['install', '--config', marked.configFile, '--backend', 'nftables']);
      assert.equal(r.status, 0, r.stderr);
    });
    after(async () => {
      redirect(['uninstall']);
      await marked?.stop();
    });

    test('mesh names resolve and other names are forwarded without looping back into the sidecar', () => {
      assert.match(getent(APP, 'users').address, /^240\.240\.\d+\.\d+$/);
      assert.equal(getent(APP, 'ext.example').address, net.serverIp2, 'forwarded to dns.upstreams with the mark, not captured');
      const m = net.sh(net.client, ['curl', '-s', '-m', '5', 'http://127.0.0.1:15100/metrics']);
      assert.ok(metricValue(m, 'dreammesh_dns_queries_total', { outcome: 'forwarded', qtype: 'A' }) >= 1);
      assert.equal(metricValue(m, 'dreammesh_dns_queries_total', { outcome: 'servfail', qtype: 'A' }), 0, 'no forwarded query came back to the listener');
      assert.equal(marked!.child.exitCode, null);
    });

    test('redirect verify checks DNS capture too: it passes with the rules, and fails naming DNS when only TCP is captured', () => {
      const probe = `${net.clientIp.replace(/\.1$/, '.200')}:80`;
      const ok = redirect(['verify', '--config', marked!.configFile, '--uid', '1001', '--probe', probe]);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /capture ok: .*DNS "users" → 240\.240\.\d+\.\d+/);
      // TCP capture without DNS capture: the app's lookups go to the (silent) real nameserver.
      assert.equal(redirect(['install', '--config', marked!.configFile, '--backend', 'nftables', '--no-capture-dns']).status, 0);
      const bad = redirect(['verify', '--config', marked!.configFile, '--uid', '1001', '--probe', probe]);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stdout + bad.stderr, /DNS (capture does not answer|is not captured)/);
      assert.equal(redirect(['install', '--config', marked!.configFile, '--backend', 'nftables']).status, 0);
    });
  });

  test('bad input at the DNS listener (UDP garbage, huge TCP lengths): the sidecar stays alive and answers', () => {
    const script = `
      const dgram = require('node:dgram'); const net = require('node:net');
      const s = dgram.createSocket('udp4'); let n = 0;
      for (let i = 0; i < 100; i++) { const b = Buffer.alloc(i * 3 % 97); for (let k = 0; k < b.length; k++) b[k] = (i * 31 + k * 7) & 255; s.send(b, 15053, '127.0.0.1', () => { if (++n === 100) s.close(); }); }
      const c = net.connect(15053, '127.0.0.1', () => { c.write(Buffer.from([0xff, 0xff, 1, 2, 3])); setTimeout(() => c.destroy(), 300); });
      c.on('error', () => {});
      const d = net.connect(15053, '127.0.0.1', () => d.write(Buffer.from([0, 1, 9]))); d.on('error', () => {});
      setTimeout(() => process.exit(0), 600);`;
    net.sh(net.client, [process.execPath, '-e', script]);
    assert.equal(mesh!.child.exitCode, null, 'the sidecar is still running');
    assert.match(vipOf('users'), /^240\.240\./);
    assert.ok(metricValue(metrics(), 'dreammesh_dns_queries_total', { outcome: 'mesh', qtype: 'A' }) > 0);
  });
});
