// Capture controls with real kernel rules, inside network namespaces this test creates (never
// in the machine's own): `redirect verify`, self-exclusion by socket mark (a sidecar running as
// the app's own uid), TPROXY inbound, and IPv6 that fails closed. Client namespace (app +
// sidecar) ─veth─ server namespace (HTTP, redis-like servers; the "remote client" for inbound).
// Skipped, with the reason printed, when not root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, startServers, whyNoNetns, type NetnsPair } from '../helpers/netns.js';
import { spawnSidecar, CLI, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricValue } from '../helpers/http.js';

const skip = whyNoNetns();
if (skip !== null) process.stdout.write(`# e2e capture controls: skipped: ${skip}\n`);

const APP_UID = 1001;
const APP = ['setpriv', `--reuid=${APP_UID}`, `--regid=${APP_UID}`, '--clear-groups'];
/** The app's uid with CAP_NET_ADMIN (what SO_MARK needs): how the marked sidecar runs. */
const APP_WITH_NET_ADMIN = [...APP, '--inh-caps=+net_admin', '--ambient-caps=+net_admin'];
const TCP_CLIENT = fileURLToPath(new URL('../helpers/tcp-client.js', import.meta.url));
const BACKENDS = ['iptables-nft', 'iptables-legacy', 'nftables'] as const;
const MARK = 0x539;

let net: NetnsPair;
let servers: ChildProcess | undefined;

type Run = { status: number; stdout: string; stderr: string };

function cli(args: string[], env?: NodeJS.ProcessEnv): Run {
  return net.try(net.client, [process.execPath, CLI, ...args], env ? { env } : {});
}

/**
 * iptables-legacy tables are kernel objects that, once an install created them, stay (empty,
 * policies ACCEPT) until the namespace goes: no userspace command removes them. After a
 * successful install + uninstall such an empty table counts as absent; after a failed
 * install the comparison is strict.
 */
function withoutEmptyLegacyTables(save: string): string {
  return save.replace(/^\*\w+\n((?::\S+ ACCEPT \[\]\n)*)COMMIT\n/gm, '');
}

/** Every ruleset and routing table a backend could touch, counters removed. */
function snapshot(opts: { afterUninstall?: boolean } = {}): string {
  const parts: string[] = [];
  for (const cmd of [
    ['iptables-nft-save'],
    ['iptables-legacy-save'],
    ['ip6tables-nft-save'],
    ['ip6tables-legacy-save'],
    ['nft', 'list', 'ruleset'],
    ['ip', '-4', 'rule'],
    ['ip', '-6', 'rule'],
    ['ip', '-4', 'route', 'show', 'table', 'all'],
    ['ip', '-6', 'route', 'show', 'table', 'all'],
  ]) {
    const r = net.try(net.client, cmd);
    const text = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      // Link-local routes come and go with the veth's IPv6 autoconfiguration, not with us.
      .filter((l) => !l.includes('fe80::'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, '[]').replace(/counter packets \d+ bytes \d+/g, 'counter'))
      .join('\n');
    parts.push(`## ${cmd.join(' ')}\n` + (opts.afterUninstall === true && cmd[0]!.includes('legacy') ? withoutEmptyLegacyTables(text) : text));
  }
  return parts.join('\n');
}

function curlAs(prefix: string[], url: string): { status: number; body: { port?: number; remote?: string; headers?: Record<string, string> }; raw: string } {
  const r = net.try(net.client, [...prefix, 'curl', '-s', '-m', '5', url]);
  let body = {};
  try {
    body = JSON.parse(r.stdout) as object;
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, raw: r.stdout + r.stderr };
}

function tcpAs(prefix: string[], host: string, port: number, send: string): string {
  return JSON.parse(net.sh(net.client, [...prefix, process.execPath, TCP_CLIENT, host, String(port), JSON.stringify([{ send }]), '800'])) as string;
}

/** Packets counted by `nft add rule ... counter` rules in table inet dmtest, by comment. */
function counters(): Map<string, number> {
  const out = net.sh(net.client, ['nft', 'list', 'table', 'inet', 'dmtest']);
  const m = new Map<string, number>();
  for (const l of out.split('\n')) {
    const c = /counter packets (\d+) .*comment "([^"]+)"/.exec(l);
    if (c) m.set(c[2]!, Number(c[1]));
  }
  return m;
}

function alive(m: SpawnedSidecar): void {
  assert.equal(m.child.exitCode, null, `sidecar exited: ${m.stderr()}`);
  const r = net.try(net.client, ['curl', '-s', '-m', '3', `${m.adminUrl}/live`]);
  assert.equal(r.status, 0, 'the sidecar still answers on its admin port');
}

describe('capture controls in network namespaces', { skip: skip ?? false }, () => {
  before(async () => {
    net = createNetnsPair('cc');
    servers = await startServers(net.server);
  });
  after(() => {
    servers?.kill('SIGKILL');
    net?.destroy();
  });

  describe('self-exclusion by socket mark: the sidecar runs as the app uid', () => {
    let mesh: SpawnedSidecar;
    const probe = (): string => `${net.clientIp.replace(/\.1$/, '.200')}:80`;
    before(async () => {
      mesh = await spawnSidecar(
        {
          listeners: { outbound: '127.0.0.1:15001', admin: '127.0.0.1:15000' },
          transparent: { enabled: true, detectTimeoutMs: 100, redirect: { proxyMark: MARK } },
          services: { web: { endpoints: [`${net.serverIp}:8080`] }, cache: { endpoints: [`${net.serverIp}:6379`] } },
        },
        { prefix: ['ip', 'netns', 'exec', net.client, ...APP_WITH_NET_ADMIN], readable: true },
      );
      // Counts SYNs to the upstream, with and without the mark (a table of the test's own).
      net.sh(net.client, ['nft', '-f', '-'], {
        input:
          'table inet dmtest {\n chain out {\n  type filter hook output priority 0; policy accept;\n' +
          `  ip daddr ${net.serverIp} tcp flags syn meta mark ${MARK} counter comment "marked"\n` +
          `  ip daddr ${net.serverIp} tcp flags syn meta mark != ${MARK} counter comment "unmarked"\n } \n}\n`,
      });
    });
    after(async () => {
      cli(['redirect', 'uninstall']);
      net.try(net.client, ['nft', 'delete', 'table', 'inet', 'dmtest']);
      await mesh?.stop();
    });

    for (const backend of BACKENDS) {
      test(`${backend}: requests from the app uid are captured, the sidecar's own (marked) ones are not: no loop`, () => {
        const loose = snapshot({ afterUninstall: true });
        const r = cli(['redirect', 'install', '--config', mesh.configFile, '--backend', backend]);
        assert.equal(r.status, 0, r.stderr);
        const shown = cli(['redirect', 'show', '--config', mesh.configFile, '--backend', backend]);
        assert.equal(shown.status, 0, shown.stdout);
        const c0 = counters();
        const m0 = net.sh(net.client, ['curl', '-s', '-m', '5', `${mesh.adminUrl}/metrics`]);
        for (let i = 0; i < 3; i++) {
          const res = curlAs(APP, `http://${net.serverIp}:8080/marked-${i}`);
          assert.equal(res.status, 0, res.raw);
          assert.equal(res.body.port, 8080);
          assert.match(res.body.headers?.via ?? '', /dreammesh-/, 'went through the sidecar');
        }
        assert.equal(tcpAs(APP, net.serverIp, 6379, 'PING\r\n'), '+PONG\r\n', 'opaque relay with a marked upstream');
        const m1 = net.sh(net.client, ['curl', '-s', '-m', '5', `${mesh.adminUrl}/metrics`]);
        assert.equal(
          metricValue(m1, 'dreammesh_requests_total', { mode: 'transparent', service: 'web', code: '200' }) - metricValue(m0, 'dreammesh_requests_total', { mode: 'transparent', service: 'web', code: '200' }),
          3,
        );
        assert.equal(metricValue(m1, 'dreammesh_tunnels_total', { mode: 'transparent', kind: 'egress', outcome: 'loop' }), 0, 'no loop');
        const c1 = counters();
        // The app's SYN is unmarked (and redirected); every upstream SYN the sidecar sent carried the mark.
        assert.ok((c1.get('marked') ?? 0) - (c0.get('marked') ?? 0) >= 1, `marked SYNs: ${JSON.stringify([...c1])}`);
        const v = cli(['redirect', 'verify', '--config', mesh.configFile, '--backend', backend, '--uid', String(APP_UID), '--probe', probe()]);
        assert.equal(v.status, 0, v.stdout + v.stderr);
        assert.match(v.stdout, /capture ok: uid 1001 .* \(SO_MARK 0x539\) is not captured/);
        alive(mesh);
        assert.equal(cli(['redirect', 'uninstall']).status, 0);
        assert.equal(snapshot({ afterUninstall: true }), loose);
      });
    }

    test('verify fails with the reason and the fix when the rules are not installed', () => {
      const v = cli(['redirect', 'verify', '--config', mesh.configFile, '--uid', String(APP_UID), '--probe', probe()]);
      assert.equal(v.status, 1, v.stdout + v.stderr);
      assert.match(v.stderr, /outbound connections from uid 1001 are not captured: no capture rules are installed .*run `dreammesh redirect install --config \S+`/);
      alive(mesh);
    });
  });

  describe('redirect verify with a proxy uid', () => {
    let mesh: SpawnedSidecar;
    const probe = (): string => `${net.clientIp.replace(/\.1$/, '.201')}:80`;
    before(async () => {
      mesh = await spawnSidecar(
        {
          listeners: { outbound: '127.0.0.1:15011', admin: '127.0.0.1:15010' },
          transparent: { enabled: true, detectTimeoutMs: 100, redirect: { proxyUid: 0 } },
          services: { web: { endpoints: [`${net.serverIp}:8080`] } },
        },
        { prefix: ['ip', 'netns', 'exec', net.client] },
      );
    });
    after(async () => {
      cli(['redirect', 'uninstall']);
      await mesh?.stop();
    });

    test('passes when installed (default uid nobody), then fails clearly when the proxy uid is wrong', () => {
      assert.equal(cli(['redirect', 'install', '--config', mesh.configFile, '--backend', 'nftables']).status, 0);
      const ok = cli(['redirect', 'verify', '--config', mesh.configFile, '--probe', probe()]);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(
        ok.stdout,
        new RegExp(`capture ok: uid 65534 → ${probe().replace(/\./g, '\\.')} reached this sidecar \\(original destination ${probe().replace(/\./g, '\\.')}\\), its own traffic \\(uid 0\\) is not captured`),
      );
      // Rules made for another uid: the sidecar's own connections would be captured.
      assert.equal(cli(['redirect', 'install', '--config', mesh.configFile, '--backend', 'nftables', '--proxy-uid', '4242']).status, 0);
      const bad = cli(['redirect', 'verify', '--config', mesh.configFile, '--probe', probe()]);
      assert.equal(bad.status, 1, bad.stdout + bad.stderr);
      assert.match(bad.stderr, /the sidecar's own traffic \(uid 0\) is captured too/);
      alive(mesh);
    });

    test('bad verify input: a probe that is no address, a probe the rules exclude, a non-numeric uid', () => {
      assert.equal(cli(['redirect', 'install', '--config', mesh.configFile, '--backend', 'nftables', '--exclude-outbound-ports', '81']).status, 0);
      const a = cli(['redirect', 'verify', '--config', mesh.configFile, '--probe', 'example.com:80']);
      assert.equal(a.status, 2, a.stderr);
      assert.match(a.stderr, /MESH_ERR_REDIRECT_INVALID: --probe/);
      const b = cli(['redirect', 'verify', '--config', mesh.configFile, '--exclude-outbound-ports', '81', '--probe', `${net.serverIp}:81`]);
      assert.equal(b.status, 1, b.stderr);
      assert.match(b.stderr, /is not captured by these settings \(port 81 is in excludeOutboundPorts\)/);
      const c = cli(['redirect', 'verify', '--config', mesh.configFile, '--uid', 'root']);
      assert.equal(c.status, 2, c.stderr);
      assert.match(c.stderr, /--uid: "root" is not a numeric uid/);
      alive(mesh);
    });
  });

  describe('TPROXY inbound: the sidecar sees the real client address, redirect and tproxy both deliver', () => {
    let app: ChildProcess;
    before(async () => {
      app = await startServers(net.client);
    });
    after(() => {
      cli(['redirect', 'uninstall']);
      app?.kill('SIGKILL');
    });

    const cases: [backend: (typeof BACKENDS)[number], mode: 'redirect' | 'tproxy', originalSource: boolean][] = [['nftables', 'redirect', false]];
    for (const backend of BACKENDS) cases.push([backend, 'tproxy', false], [backend, 'tproxy', true]);
    for (const [backend, mode, originalSource] of cases) {
      test(`${backend}: inboundMode ${mode}${originalSource ? ', tproxyOriginalSource: the app socket sees the client' : ''}`, async () => {
        // An iptables-legacy table, once created, stays (empty) for the namespace's life.
        const pristine = snapshot({ afterUninstall: true });
        const m = await spawnSidecar(
          {
            app: '127.0.0.1:8080',
            listeners: { outbound: '127.0.0.1:15021', inbound: '0.0.0.0:15026', admin: '127.0.0.1:15020' },
            accessLog: { enabled: true },
            transparent: { enabled: true, redirect: { proxyUid: 0, inboundMode: mode, tproxyOriginalSource: originalSource, includeInboundPorts: [8080, 9090] } },
          },
          { prefix: ['ip', 'netns', 'exec', net.client] },
        );
        try {
          const r = cli(['redirect', 'install', '--config', m.configFile, '--backend', backend]);
          assert.equal(r.status, 0, r.stderr);
          const once = snapshot();
          assert.equal(cli(['redirect', 'install', '--config', m.configFile, '--backend', backend]).status, 0, 'twice is fine');
          assert.equal(snapshot(), once, 'install twice = once');
          if (mode === 'tproxy') {
            assert.match(net.sh(net.client, ['ip', '-4', 'rule']), /fwmark 0x4d4d lookup 15006/);
            assert.match(net.sh(net.client, ['ip', '-4', 'route', 'show', 'table', '15006']), /local default dev lo/);
            const shown = cli(['redirect', 'show', '--config', m.configFile, '--backend', backend]);
            assert.equal(shown.status, 0, shown.stdout + shown.stderr);
            if (backend !== 'nftables') assert.match(net.sh(net.client, [`${backend}-save`, '-t', 'mangle']), /-j TPROXY --on-port 15026 --on-ip 0\.0\.0\.0 --tproxy-mark 0x4d4d\/0xffffffff/);
            // The routing entry gone: show notices.
            net.sh(net.client, ['ip', '-4', 'rule', 'del', 'fwmark', '0x4d4d', 'lookup', '15006']);
            const broken = cli(['redirect', 'show', '--config', m.configFile, '--backend', backend]);
            assert.equal(broken.status, 1, broken.stdout + broken.stderr);
            assert.match(broken.stdout + broken.stderr, /missing ip -4 rule fwmark 19789 lookup 15006/);
            assert.equal(cli(['redirect', 'install', '--config', m.configFile, '--backend', backend]).status, 0, 'install repairs it');
            assert.equal(snapshot(), once);
          }
          for (const port of [8080, 9090]) {
            const got = JSON.parse(net.sh(net.server, ['curl', '-s', '-m', '5', `http://${net.clientIp}:${port}/in`])) as { port: number; remote?: string; headers: Record<string, string> };
            assert.equal(got.port, port, `delivered to the app on :${port}`);
            assert.match(got.headers.via ?? '', /dreammesh-/, 'through the inbound listener');
            assert.equal(got.headers['x-forwarded-for'], net.serverIp, "the client's real address");
            // The app's own socket: the sidecar's hop on loopback, or the client itself (original source).
            if (originalSource) assert.equal(got.remote?.replace(/^::ffff:/, ''), net.serverIp);
            else assert.match(got.remote ?? '', /127\.0\.0\.1/);
          }
          // Straight to the inbound listener (not diverted): the app's own address, from the sidecar.
          const direct = JSON.parse(net.sh(net.server, ['curl', '-s', '-m', '5', `http://${net.clientIp}:15026/direct`])) as { port: number; remote?: string; headers: Record<string, string> };
          assert.equal(direct.port, 8080);
          assert.match(direct.remote ?? '', /127\.0\.0\.1/);
          alive(m);
        } finally {
          assert.equal(cli(['redirect', 'uninstall']).status, 0);
          await m.stop();
        }
        // The sidecar's access log names the real client too (flushed by the stop).
        assert.match(m.stdout(), new RegExp(`"downstream":"(::ffff:)?${net.serverIp.replace(/\./g, '\\.')}"`));
        assert.equal(snapshot({ afterUninstall: true }), pristine, 'uninstall leaves rules and routing exactly as before');
      });
    }
  });

  describe('TPROXY across backends and modes: each install leaves exactly its own rules and routing', () => {
    after(() => {
      cli(['redirect', 'uninstall']);
    });

    test('nftables tproxy → iptables-legacy tproxy → iptables-nft redirect → uninstall', () => {
      const base = ['--proxy-uid', '0', '--outbound-port', '15001', '--inbound-port', '15006', '--include-inbound-ports', '8080'];
      const loose = snapshot({ afterUninstall: true });
      const rules = (): string => net.sh(net.client, ['ip', '-4', 'rule']);
      const tproxyIn = (b: string): boolean => /DREAMMESH_DIVERT/.test(net.try(net.client, [`${b}-save`]).stdout);
      assert.equal(cli(['redirect', 'install', ...base, '--inbound-mode', 'tproxy', '--backend', 'nftables']).status, 0);
      assert.match(rules(), /fwmark 0x4d4d lookup 15006/);
      // Another backend: the nftables table and its routing go, the new install puts the routing back.
      const r = cli(['redirect', 'install', ...base, '--inbound-mode', 'tproxy', '--backend', 'iptables-legacy']);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(net.sh(net.client, ['nft', 'list', 'tables']), /inet dreammesh/);
      assert.ok(tproxyIn('iptables-legacy'));
      assert.match(rules(), /fwmark 0x4d4d lookup 15006/);
      assert.match(net.sh(net.client, ['ip', '-4', 'route', 'show', 'table', '15006']), /local default dev lo/);
      assert.equal(cli(['redirect', 'show', ...base, '--inbound-mode', 'tproxy', '--backend', 'iptables-legacy']).status, 0);
      // Shown against redirect settings, the TPROXY rules are a difference.
      const other = cli(['redirect', 'show', ...base, '--backend', 'iptables-legacy']);
      assert.equal(other.status, 1);
      assert.match(other.stdout, /TPROXY rules installed but inboundMode is redirect/);
      // Back to REDIRECT on iptables-nft: mangle chains and routing are gone.
      assert.equal(cli(['redirect', 'install', ...base, '--backend', 'iptables-nft']).status, 0);
      assert.ok(!tproxyIn('iptables-legacy') && !tproxyIn('iptables-nft'));
      assert.doesNotMatch(rules(), /lookup 15006/);
      assert.equal(net.try(net.client, ['ip', '-4', 'route', 'show', 'table', '15006']).stdout.trim(), '');
      assert.equal(cli(['redirect', 'install', ...base, '--inbound-mode', 'tproxy', '--backend', 'iptables-nft']).status, 0);
      assert.ok(tproxyIn('iptables-nft'));
      assert.equal(cli(['redirect', 'install', ...base, '--backend', 'iptables-nft']).status, 0);
      assert.ok(!tproxyIn('iptables-nft'));
      if (!/^table ip mangle/m.test(loose)) assert.doesNotMatch(net.sh(net.client, ['nft', 'list', 'tables']), /ip mangle/, 'the mangle table the tproxy install created is gone again');
      assert.equal(cli(['redirect', 'uninstall']).status, 0);
      assert.equal(snapshot({ afterUninstall: true }), loose);
    });
  });

  describe('IPv6 fails closed: a failed v6 install leaves everything exactly as before', () => {
    let shim: string;
    before(() => {
      shim = mkdtempSync(join(tmpdir(), 'dm-shim-'));
      for (const b of ['ip6tables-nft-restore', 'ip6tables-legacy-restore']) writeFileSync(join(shim, b), '#!/bin/sh\ncat >/dev/null\necho "shim: v6 refused" >&2\nexit 1\n', { mode: 0o755 });
      // ip: everything works except IPv6 (the TPROXY v6 route/rule).
      writeFileSync(join(shim, 'ip'), `#!/bin/sh\nif [ "$1" = "-6" ]; then echo "shim: v6 refused" >&2; exit 2; fi\nexec ${net.try(net.client, ['sh', '-c', 'command -v ip']).stdout.trim()} "$@"\n`, { mode: 0o755 });
    });
    after(() => {
      cli(['redirect', 'uninstall']);
      rmSync(shim, { recursive: true, force: true });
    });

    for (const backend of BACKENDS) {
      test(`${backend}`, () => {
        const cfgArgs = ['--proxy-uid', '0', '--outbound-port', '15001', '--ipv6', '--backend', backend];
        const extra = ['--inbound-mode', 'tproxy', '--include-inbound-ports', '8080', '--inbound-port', '15006'];
        const pristine = snapshot();
        const loose = snapshot({ afterUninstall: true });
        const r = cli(['redirect', 'install', ...cfgArgs, ...extra], { ...process.env, PATH: `${shim}:${process.env.PATH ?? ''}` });
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /MESH_ERR_REDIRECT_FAILED: .*v6 refused/);
        assert.equal(snapshot(), pristine);
        // And without the shim the same install works (the failure was the forced one).
        const ok = cli(['redirect', 'install', ...cfgArgs, ...extra]);
        assert.equal(ok.status, 0, ok.stderr);
        assert.equal(cli(['redirect', 'uninstall']).status, 0);
        assert.equal(snapshot({ afterUninstall: true }), loose);
      });
    }
  });

  describe('bad input', () => {
    test('invalid marks and modes are clear errors and nothing is applied', () => {
      const s0 = snapshot();
      for (const [args, re] of [
        [['--proxy-mark', '0'], /--proxy-mark: "0" is not a mark/],
        [['--proxy-mark', '0x1ffffffff'], /--proxy-mark: "0x1ffffffff" is not a mark/],
        [['--proxy-mark', 'abc'], /--proxy-mark: "abc" is not a mark/],
        [['--proxy-uid', '0', '--inbound-mode', 'nat'], /--inbound-mode: "nat" is not one of redirect, tproxy/],
        [['--proxy-mark', '0x4d4d', '--inbound-mode', 'tproxy', '--backend', 'iptables-nft', '--include-inbound-ports', '8080', '--inbound-port', '15006'], /tproxyMark: must differ from proxyMark/],
      ] as const) {
        const r = cli(['redirect', 'install', '--outbound-port', '15001', ...args]);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /MESH_ERR_REDIRECT_INVALID/);
        assert.match(r.stderr, re);
      }
      assert.equal(snapshot(), s0);
    });

    test('a proxyMark or TPROXY sidecar without CAP_NET_ADMIN, or without the addon, refuses to start with the reason', async () => {
      await assert.rejects(
        spawnSidecar(
          { listeners: { outbound: '127.0.0.1:15031', admin: '127.0.0.1:15030' }, transparent: { enabled: true, redirect: { proxyMark: MARK } } },
          { prefix: ['ip', 'netns', 'exec', net.client, ...APP], readable: true },
        ),
        /proxyMark: cannot set SO_MARK \(EPERM\): the sidecar needs CAP_NET_ADMIN/,
      );
      await assert.rejects(
        spawnSidecar(
          { app: '127.0.0.1:8080', listeners: { outbound: '127.0.0.1:15031', inbound: '0.0.0.0:15036', admin: '127.0.0.1:15030' }, transparent: { enabled: true, redirect: { proxyUid: APP_UID, inboundMode: 'tproxy' } } },
          { prefix: ['ip', 'netns', 'exec', net.client, ...APP], readable: true },
        ),
        /listeners.inbound: cannot open 0.0.0.0:15036 with IP_TRANSPARENT .*EPERM \(needs CAP_NET_ADMIN/,
      );
      await assert.rejects(
        spawnSidecar(
          { listeners: { outbound: '127.0.0.1:15031', admin: '127.0.0.1:15030' }, transparent: { redirect: { proxyMark: MARK } } },
          { prefix: ['ip', 'netns', 'exec', net.client], env: { DREAMMESH_NATIVE_ADDON: '/nonexistent/original_dst.node' } },
        ),
        /MESH_ERR_NATIVE_MISSING: transparent\.redirect\.proxyMark needs the native addon's socket options, which are not available \(\/nonexistent\/original_dst\.node does not exist/,
      );
    });
  });
});
