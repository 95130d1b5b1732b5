// Transparent mode with real kernel rules, inside network namespaces this test creates (never
// in the machine's own): client namespace (sidecar + "application" uid 1001) ─veth─ server
// namespace (HTTP, server-first, redis-like and binary servers). The same suite runs for every
// backend. Skipped, with the reason printed, when not root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, startServers, whyNoNetns, type NetnsPair } from '../helpers/netns.js';
import { spawnSidecar, CLI, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricValue } from '../helpers/http.js';

const skip = whyNoNetns();
if (skip !== null) process.stdout.write(`# e2e transparent: skipped: ${skip}\n`);

const APP = ['setpriv', '--reuid=1001', '--regid=1001', '--clear-groups'];
const TCP_CLIENT = fileURLToPath(new URL('../helpers/tcp-client.js', import.meta.url));
const BACKENDS = ['iptables-nft', 'iptables-legacy', 'nftables'] as const;

let net: NetnsPair;
let servers: ChildProcess | undefined;
let mesh: SpawnedSidecar | undefined;

function cfg(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    // The app the inbound-capture tests start in the client namespace (and an inbound listener for it).
    app: '127.0.0.1:8080',
    listeners: { outbound: '127.0.0.1:15001', inbound: '0.0.0.0:15006', admin: '127.0.0.1:15000' },
    transparent: {
      enabled: true,
      detectTimeoutMs: 100,
      redirect: { proxyUid: 0, excludeOutboundCidrs: [`${net.serverIp2}/32`], excludeOutboundPorts: [9090] },
      ...extra,
    },
    services: {
      web: { endpoints: [`${net.serverIp}:8080`] },
      mail: { endpoints: [`${net.serverIp}:2525`] },
      cache: { endpoints: [`${net.serverIp}:6379`] },
      bin: { endpoints: [`${net.serverIp}:7000`] },
    },
  };
}

/** Every ruleset a backend could hold, comments and counters removed. */
function snapshot(): string {
  const parts: string[] = [];
  for (const cmd of [['iptables-nft-save'], ['iptables-legacy-save'], ['ip6tables-nft-save'], ['nft', 'list', 'ruleset']]) {
    const r = net.try(net.client, cmd);
    parts.push(
      `## ${cmd.join(' ')}\n` +
        r.stdout
          .split('\n')
          .filter((l) => !l.startsWith('#') && !l.startsWith('# '))
          .map((l) => l.replace(/\[\d+:\d+\]/g, '[]').replace(/counter packets \d+ bytes \d+/g, 'counter'))
          .join('\n'),
    );
  }
  return parts.join('\n');
}

function redirect(args: string[], env?: NodeJS.ProcessEnv): { status: number; stdout: string; stderr: string } {
  return net.try(net.client, [process.execPath, CLI, 'redirect', ...args], env ? { env } : {});
}

function curlAs(prefix: string[], url: string): { status: number; body: { port?: number; headers?: Record<string, string> }; raw: string } {
  const r = net.try(net.client, [...prefix, 'curl', '-s', '-m', '5', url]);
  let body = {};
  try {
    body = JSON.parse(r.stdout) as object;
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, raw: r.stdout + r.stderr };
}

function tcpAs(prefix: string[], host: string, port: number, steps: { send?: string; waitMs?: number }[], totalMs = 1500): string {
  const out = net.sh(net.client, [...prefix, process.execPath, TCP_CLIENT, host, String(port), JSON.stringify(steps), String(totalMs)]);
  return JSON.parse(out) as string;
}

function metrics(): string {
  return net.sh(net.client, ['curl', '-s', '-m', '5', 'http://127.0.0.1:15000/metrics']);
}

/** Everything the sidecar counted for traffic (requests, tunnels, detections). */
function traffic(m: string): number {
  return m
    .split('\n')
    .filter((l) => /^dreammesh_(requests_total|tunnels_total|detected_protocol_total)\{/.test(l))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Rules "another tool" had before us: they must survive install + uninstall untouched. */
function addForeignRules(backend: (typeof BACKENDS)[number]): void {
  if (backend === 'nftables') {
    net.sh(net.client, ['nft', '-f', '-'], { input: 'table inet othertool {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ip daddr 192.0.2.1 counter\n }\n}\n' });
  } else {
    net.sh(net.client, [`${backend}`, '-t', 'nat', '-A', 'OUTPUT', '-d', '192.0.2.1/32', '-j', 'RETURN']);
    net.sh(net.client, [`${backend}`, '-A', 'OUTPUT', '-d', '192.0.2.2/32', '-j', 'ACCEPT']);
  }
}

describe('transparent mode in network namespaces', { skip: skip ?? false }, () => {
  before(async () => {
    net = createNetnsPair('tp');
    servers = await startServers(net.server);
    mesh = await spawnSidecar(cfg(), { prefix: ['ip', 'netns', 'exec', net.client] });
  });
  after(async () => {
    await mesh?.stop();
    servers?.kill('SIGKILL');
    net?.destroy();
  });

  for (const backend of BACKENDS) {
    describe(`backend ${backend}`, () => {
      let pristine = '';
      const install = (): ReturnType<typeof redirect> => redirect(['install', '--config', mesh!.configFile, '--backend', backend]);
      before(() => {
        addForeignRules(backend);
        pristine = snapshot();
      });
      after(() => {
        redirect(['uninstall']);
      });

      test('install twice is the same as once, and show says it matches the config', () => {
        const r1 = install();
        assert.equal(r1.status, 0, r1.stderr);
        const once = snapshot();
        assert.notEqual(once, pristine);
        const r2 = install();
        assert.equal(r2.status, 0, r2.stderr);
        assert.equal(snapshot(), once);
        const s = redirect(['show', '--config', mesh!.configFile, '--backend', backend]);
        assert.equal(s.status, 0, s.stdout + s.stderr);
        assert.match(s.stdout, /matches config: yes/);
      });

      test("the application's curl is captured and routed to the service (Via added, mode=transparent)", () => {
        const before = metricValue(metrics(), 'dreammesh_requests_total', { mode: 'transparent', service: 'web', code: '200' });
        const r = curlAs(APP, `http://${net.serverIp}:8080/captured`);
        assert.equal(r.status, 0, r.raw);
        assert.equal(r.body.port, 8080);
        assert.match(r.body.headers?.via ?? '', /dreammesh-/, 'the request went through the sidecar');
        assert.equal(metricValue(metrics(), 'dreammesh_requests_total', { mode: 'transparent', service: 'web', code: '200' }), before + 1);
      });

      test("the proxy uid's own traffic is not captured (no loop)", () => {
        const t0 = traffic(metrics());
        const r = curlAs([], `http://${net.serverIp}:8080/direct`);
        assert.equal(r.status, 0, r.raw);
        assert.equal(r.body.headers?.via, undefined);
        assert.equal(traffic(metrics()), t0);
      });

      test('an excluded CIDR and an excluded port bypass the sidecar (its metrics do not move)', () => {
        const t0 = traffic(metrics());
        const a = curlAs(APP, `http://${net.serverIp2}:8080/excluded-cidr`);
        assert.equal(a.status, 0, a.raw);
        assert.equal(a.body.headers?.via, undefined);
        const b = curlAs(APP, `http://${net.serverIp}:9090/excluded-port`);
        assert.equal(b.status, 0, b.raw);
        assert.equal(b.body.port, 9090);
        assert.equal(b.body.headers?.via, undefined);
        assert.equal(traffic(metrics()), t0);
      });

      test('a server-first TCP service works through capture (banner after the detect timeout)', () => {
        const before = metricValue(metrics(), 'dreammesh_tunnels_total', { mode: 'transparent', kind: 'service', outcome: 'ok' });
        const got = tcpAs(APP, net.serverIp, 2525, [{ waitMs: 400, send: 'QUIT\r\n' }], 1200);
        assert.equal(got, '220 e2e ready\r\necho:QUIT\r\n');
        assert.equal(metricValue(metrics(), 'dreammesh_tunnels_total', { mode: 'transparent', kind: 'service', outcome: 'ok' }), before + 1);
      });

      test('a client-first DB protocol passes as opaque TCP (opaquePorts), a binary one after detection', () => {
        const m0 = metrics();
        assert.equal(tcpAs(APP, net.serverIp, 6379, [{ send: 'PING\r\n' }], 800), '+PONG\r\n');
        assert.equal(tcpAs(APP, net.serverIp, 7000, [{ send: '\x00\x01\x02\xff' }], 800), 'echo:\x00\x01\x02\xff');
        const m1 = metrics();
        assert.equal(metricValue(m1, 'dreammesh_detected_protocol_total', { protocol: 'opaque-port' }), metricValue(m0, 'dreammesh_detected_protocol_total', { protocol: 'opaque-port' }) + 1);
        assert.equal(metricValue(m1, 'dreammesh_detected_protocol_total', { protocol: 'opaque' }), metricValue(m0, 'dreammesh_detected_protocol_total', { protocol: 'opaque' }) + 1);
      });

      test('one byte then a stall through capture: detection times out to opaque, nothing lost', () => {
        assert.equal(tcpAs(APP, net.serverIp, 7000, [{ send: 'G' }, { waitMs: 400, send: 'ET' }], 1200), 'echo:Gecho:ET');
      });

      test('a rule set half-applied by someone else: show notices, install repairs, uninstall cleans', () => {
        if (backend === 'nftables') net.sh(net.client, ['nft', 'delete', 'chain', 'inet', 'dreammesh', 'prerouting']);
        else net.sh(net.client, [backend, '-t', 'nat', '-D', 'OUTPUT', '-p', 'tcp', '-j', 'DREAMMESH_OUTPUT']);
        const s = redirect(['show', '--config', mesh!.configFile, '--backend', backend]);
        assert.equal(s.status, 1, s.stdout);
        assert.match(s.stdout, /matches config: no/);
        assert.equal(install().status, 0);
        assert.equal(redirect(['show', '--config', mesh!.configFile, '--backend', backend]).status, 0);
        if (backend !== 'nftables') net.sh(net.client, [backend, '-t', 'nat', '-D', 'OUTPUT', '-p', 'tcp', '-j', 'DREAMMESH_OUTPUT']);
        assert.equal(redirect(['uninstall']).status, 0);
        assert.equal(snapshot(), pristine);
        assert.equal(install().status, 0);
      });

      test('uninstall leaves the rules exactly as before install (others included); traffic goes direct again', () => {
        const u = redirect(['uninstall']);
        assert.equal(u.status, 0, u.stderr);
        assert.match(u.stdout, /removed/);
        assert.equal(snapshot(), pristine);
        assert.match(redirect(['uninstall']).stdout, /no capture rules/);
        const r = curlAs(APP, `http://${net.serverIp}:8080/after`);
        assert.equal(r.body.headers?.via, undefined);
      });
    });
  }

  describe('bad input and failure modes', () => {
    test('invalid CIDRs and ports are clear errors and nothing is applied', () => {
      const s0 = snapshot();
      for (const [flag, value, re] of [
        ['--exclude-outbound-cidrs', '10.0.0.0/33', /invalid prefix length/],
        ['--include-inbound-ports', '80,70000', /not a port/],
        ['--backend', 'ipfw', /not one of/],
      ] as const) {
        const r = redirect(['install', '--config', mesh!.configFile, flag, value]);
        assert.equal(r.status, 2, `${flag} ${value}: ${r.stderr}`);
        assert.match(r.stderr, /MESH_ERR_REDIRECT_INVALID/);
        assert.match(r.stderr, re);
      }
      assert.equal(snapshot(), s0);
    });

    test('a backend binary missing from PATH is a clear error and nothing is applied', () => {
      const s0 = snapshot();
      for (const backend of ['nftables']) {
        const r = redirect(['install', '--config', mesh!.configFile, '--backend', backend], { ...process.env, PATH: '/usr/bin:/bin/nonexistent' });
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /MESH_ERR_REDIRECT_FAILED: .* not found on PATH/);
      }
      assert.equal(snapshot(), s0);
    });

    test('inbound capture: an included app port goes through the inbound listener to the app; others do not', async () => {
      const app = await startServers(net.client);
      try {
        const r = redirect(['install', '--config', mesh!.configFile, '--backend', 'nftables', '--include-inbound-ports', '8080']);
        assert.equal(r.status, 0, r.stderr);
        const viaSidecar = JSON.parse(net.sh(net.server, ['curl', '-s', '-m', '5', `http://${net.clientIp}:8080/in`])) as { port: number; headers: Record<string, string> };
        assert.equal(viaSidecar.port, 8080);
        assert.match(viaSidecar.headers.via ?? '', /dreammesh-/);
        const direct = JSON.parse(net.sh(net.server, ['curl', '-s', '-m', '5', `http://${net.clientIp}:9090/in`])) as { port: number; headers: Record<string, string> };
        assert.equal(direct.port, 9090);
        assert.equal(direct.headers.via, undefined);
      } finally {
        redirect(['uninstall']);
        app.kill('SIGKILL');
      }
    });

    test('inbound capture delivers each connection to the app on the port it was sent to', async () => {
      const app = await startServers(net.client);
      try {
        const r = redirect(['install', '--config', mesh!.configFile, '--backend', 'nftables', '--include-inbound-ports', '8080,9090']);
        assert.equal(r.status, 0, r.stderr);
        for (const port of [8080, 9090]) {
          const got = JSON.parse(net.sh(net.server, ['curl', '-s', '-m', '5', `http://${net.clientIp}:${port}/in`])) as { port: number; headers: Record<string, string> };
          assert.equal(got.port, port, `a request sent to :${port}`);
          assert.match(got.headers.via ?? '', /dreammesh-/, `:${port} went through the inbound listener`);
        }
      } finally {
        redirect(['uninstall']);
        app.kill('SIGKILL');
      }
    });

    test('IPv6: with --ipv6 a curl -6 from the application is captured (IP6T_SO_ORIGINAL_DST) and routed', async () => {
      const m = await spawnSidecar(
        {
          ...cfg(),
          listeners: { outbound: '[::]:15301', inbound: '127.0.0.1:15306', admin: '127.0.0.1:15300' },
          services: { web6: { endpoints: [`[${net.serverIp6}]:8080`] } },
        },
        { prefix: ['ip', 'netns', 'exec', net.client] },
      );
      try {
        const r = redirect(['install', '--config', m.configFile, '--backend', 'nftables', '--ipv6']);
        assert.equal(r.status, 0, r.stderr);
        const res = curlAs([...APP], `http://[${net.serverIp6}]:8080/v6`);
        assert.equal(res.status, 0, res.raw);
        assert.match(res.body.headers?.via ?? '', /dreammesh-/);
        const text = net.sh(net.client, ['curl', '-s', '-m', '5', 'http://127.0.0.1:15300/metrics']);
        assert.equal(metricValue(text, 'dreammesh_requests_total', { mode: 'transparent', service: 'web6', code: '200' }), 1);
      } finally {
        redirect(['uninstall']);
        await m.stop();
      }
    });

    test('failOpen: the sidecar installs the rules at start and removes them at stop; redirect install refuses', async () => {
      const s0 = snapshot();
      const m = await spawnSidecar({ ...cfg({ failOpen: true }), listeners: { outbound: '127.0.0.1:15101', inbound: '0.0.0.0:15106', admin: '127.0.0.1:15100' } }, { prefix: ['ip', 'netns', 'exec', net.client] });
      try {
        assert.notEqual(snapshot(), s0);
        const r = curlAs(APP, `http://${net.serverIp}:8080/fail-open`);
        assert.match(r.body.headers?.via ?? '', /dreammesh-/);
        const refused = redirect(['install', '--config', m.configFile]);
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /failOpen/);
      } finally {
        assert.equal(await m.stop(), 0);
      }
      assert.equal(snapshot(), s0);
      assert.equal(curlAs(APP, `http://${net.serverIp}:8080/after-stop`).body.headers?.via, undefined);
    });

    test('failOpen with the outbound port taken: start fails clearly and no rule is left behind', async () => {
      const s0 = snapshot();
      // The main sidecar already holds 127.0.0.1:15001.
      await assert.rejects(
        spawnSidecar({ ...cfg({ failOpen: true }), listeners: { outbound: '127.0.0.1:15001', inbound: '0.0.0.0:15206', admin: '127.0.0.1:15200' } }, { prefix: ['ip', 'netns', 'exec', net.client] }),
        /EADDRINUSE|in use/i,
      );
      assert.equal(snapshot(), s0);
    });
  });
});
