// Transparent-capture rows: real rules in the bench's own client namespace, one row per
// backend, and rows with 1,000 / 10,000 unrelated rules in front of DreamMesh's (as linear
// rules and as one set of the same size) to show what rule count costs.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Mode, ModeSetup } from './modes.js';
import { hasBinary, upstreamAddr } from './modes.js';
import { joinDir, sidecarConfig, type BenchEnv } from './bench-env.js';
import { startSidecar } from './processes.js';
import { canUseNetns, inNetns } from './topology.js';
import { originalDstAvailable } from '../src/steering/original-dst.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** The sidecar runs with this gid; the rules never capture it (no loop). */
const PROXY_GID = 1337;
const OUTBOUND_PORT = 15001;

type Backend = 'iptables-nft' | 'iptables-legacy' | 'nftables';
const BINARY: Record<Backend, string> = { 'iptables-nft': 'iptables-nft', 'iptables-legacy': 'iptables-legacy', nftables: 'nft' };

function unavailable(backend: Backend): string | null {
  return canUseNetns() ?? (originalDstAvailable() ? null : 'the original-destination addon is not built (npm ci builds it)') ?? (hasBinary(BINARY[backend], ['--version']) ? null : `${BINARY[backend]} is not installed`);
}

function run(ns: string, argv: readonly string[], input?: string): void {
  const [cmd, ...args] = inNetns(ns, argv);
  execFileSync(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'], input });
}

/** Unrelated filter rules on the output path: N addresses that never match the bench traffic. */
function unrelatedRules(count: number, shape: 'linear' | 'set'): string {
  const addr = (i: number): string => `198.18.${(i >> 8) & 255}.${i & 255}`;
  const lines = ['table inet dmbench_unrelated {'];
  if (shape === 'set') {
    const elems = Array.from({ length: count }, (_, i) => addr(i)).join(', ');
    lines.push(`  set blocked { type ipv4_addr; elements = { ${elems} } }`);
  }
  lines.push('  chain output {', '    type filter hook output priority 0; policy accept;');
  if (shape === 'set') lines.push('    ip daddr @blocked drop');
  else for (let i = 0; i < count; i++) lines.push(`    ip daddr ${addr(i)} drop`);
  lines.push('  }', '}', '');
  return lines.join('\n');
}

async function setupTransparent(env: BenchEnv, backend: Backend, rules?: { count: number; shape: 'linear' | 'set' }): Promise<ModeSetup> {
  const ns = env.netns;
  if (ns === undefined) throw new Error('transparent rows need the bench namespaces (root)');
  const config = sidecarConfig(upstreamAddr(env), `127.0.0.1:${OUTBOUND_PORT}`, { transparent: { enabled: true } });
  const sidecar = await startSidecar(config, inNetns(ns, ['setpriv', `--regid=${PROXY_GID}`, '--clear-groups']));
  const teardown = async (): Promise<void> => {
    try {
      run(ns, [process.execPath, CLI, 'redirect', 'uninstall', '--backend', backend]);
      if (rules) run(ns, ['nft', 'delete', 'table', 'inet', 'dmbench_unrelated']);
    } finally {
      await sidecar.stop();
    }
  };
  try {
    if (rules) run(ns, ['nft', '-f', '-'], unrelatedRules(rules.count, rules.shape));
    run(ns, [process.execPath, CLI, 'redirect', 'install', '--backend', backend, '--proxy-gid', String(PROXY_GID), '--outbound-port', String(OUTBOUND_PORT)]);
  } catch (e) {
    await teardown().catch(() => {});
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`installing capture rules failed: ${err.stderr?.toString().trim() || err.message}`);
  }
  // The generator connects to the upstream's own address; the rules bring it to the sidecar.
  return { target: { transport: { tcp: env.upstream }, shape: 'origin', authority: upstreamAddr(env), netns: ns }, proxyPid: sidecar.pid, teardown };
}

const backendRow = (backend: Backend): Mode => ({
  name: `transparent-${backend}`,
  title: `transparent capture, ${backend}`,
  group: 'transparent',
  unavailable: () => unavailable(backend),
  setup: (env) => setupTransparent(env, backend),
});

const ruleRow = (count: number, shape: 'linear' | 'set'): Mode => ({
  name: `transparent-${shape === 'set' ? 'set' : 'rules'}-${count}`,
  title: `transparent (nftables) behind ${count.toLocaleString('en')} unrelated ${shape === 'set' ? 'set elements' : 'rules'}`,
  group: 'transparent',
  rules: { count, shape },
  unavailable: () => unavailable('nftables'),
  setup: (env) => setupTransparent(env, 'nftables', { count, shape }),
});

// DNS-captured row: the client names the service. Its lookup (UDP port 53, captured) is answered
// by the sidecar's DNS with the service's virtual IP, and the load then goes to VIP:80, captured
// and routed by Host like `curl http://bench/`. The name is resolved once, as an application's
// resolver cache would; the row measures the VIP path next to the address-based rows.
const DNS_PORT = 15053;
const VIP_CIDR = '240.240.0.0/16';

async function setupDns(env: BenchEnv, backend: Backend): Promise<ModeSetup> {
  const ns = env.netns;
  if (ns === undefined) throw new Error('transparent rows need the bench namespaces (root)');
  const config = sidecarConfig(upstreamAddr(env), `127.0.0.1:${OUTBOUND_PORT}`, {
    transparent: { enabled: true, redirect: { proxyGid: PROXY_GID, captureDns: true } },
    dns: { enabled: true, listen: `127.0.0.1:${DNS_PORT}`, cidr: VIP_CIDR, upstreams: [], stateFile: joinDir(env, 'dns-vips.json') },
  });
  const file = joinDir(env, 'dns-mesh.yaml');
  writeFileSync(file, stringify(config));
  const sidecar = await startSidecar(config, inNetns(ns, ['setpriv', `--regid=${PROXY_GID}`, '--clear-groups']));
  let routed = false;
  const teardown = async (): Promise<void> => {
    try {
      run(ns, [process.execPath, CLI, 'redirect', 'uninstall', '--backend', backend]);
      if (routed) run(ns, ['ip', 'route', 'del', VIP_CIDR]);
    } finally {
      await sidecar.stop();
    }
  };
  let vip: string;
  try {
    run(ns, [process.execPath, CLI, 'redirect', 'install', '--config', file, '--backend', backend, '--outbound-port', String(OUTBOUND_PORT)]);
    // connect() needs a route to the VIP before the capture rules see the packet.
    run(ns, ['ip', 'route', 'add', VIP_CIDR, 'dev', `${ns}v`]);
    routed = true;
    // Any nameserver address will do: port 53 is captured (a local stub such as 127.0.0.53 too).
    const [cmd, ...args] = inNetns(ns, ['dig', '@127.0.0.53', 'bench', '+short', '+tries=1', '+time=2']);
    vip = execFileSync(cmd!, args, { encoding: 'utf8' }).trim();
    if (!/^240\.240\.\d+\.\d+$/.test(vip)) throw new Error(`the captured lookup of "bench" answered ${JSON.stringify(vip)}, not a virtual IP`);
  } catch (e) {
    await teardown().catch(() => {});
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`DNS capture setup failed: ${err.stderr?.toString().trim() || err.message}`);
  }
  return { target: { transport: { tcp: { host: vip, port: 80 } }, shape: 'origin', authority: 'bench', netns: ns }, proxyPid: sidecar.pid, teardown };
}

const dnsRow = (backend: Backend): Mode => ({
  name: `transparent-dns-${backend}`,
  title: `transparent by name: captured DNS → virtual IP, ${backend}`,
  group: 'transparent',
  unavailable: () => unavailable(backend) ?? (hasBinary('dig', ['-v']) ? null : 'dig is not installed (Debian package dnsutils)'),
  setup: (env) => setupDns(env, backend),
});

/**
 * Inbound capture: the sidecar runs next to the upstream (the "app") in the server namespace,
 * and the load generator's connections to the app's own address are captured there, by NAT
 * REDIRECT or by TPROXY (no NAT; IP_TRANSPARENT listener), into the inbound listener.
 */
async function setupInbound(env: BenchEnv, mode: 'redirect' | 'tproxy', originalSource = false): Promise<ModeSetup> {
  const ns = env.serverNetns;
  if (ns === undefined || env.netns === undefined) throw new Error('inbound-capture rows need the bench namespaces (root)');
  const inboundPort = 15006;
  const config = {
    ...sidecarConfig(upstreamAddr(env), `127.0.0.1:${OUTBOUND_PORT}`),
    app: upstreamAddr(env),
    listeners: { outbound: `127.0.0.1:${OUTBOUND_PORT}`, inbound: `0.0.0.0:${inboundPort}`, admin: '127.0.0.1:0' },
    transparent: { enabled: true, redirect: { proxyUid: 0, inboundMode: mode, tproxyOriginalSource: originalSource, includeOutboundCidrs: [], includeInboundPorts: [env.upstream.port] } },
  };
  const sidecar = await startSidecar(config, inNetns(ns, []));
  const teardown = async (): Promise<void> => {
    try {
      run(ns, [process.execPath, CLI, 'redirect', 'uninstall', '--backend', 'nftables']);
    } finally {
      await sidecar.stop();
    }
  };
  try {
    const args = ['--backend', 'nftables', '--proxy-uid', '0', '--outbound-port', String(OUTBOUND_PORT), '--include-outbound-cidrs', '', '--inbound-port', String(inboundPort)];
    run(ns, [process.execPath, CLI, 'redirect', 'install', ...args, '--include-inbound-ports', String(env.upstream.port), '--inbound-mode', mode]);
  } catch (e) {
    await teardown().catch(() => {});
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`installing capture rules failed: ${err.stderr?.toString().trim() || err.message}`);
  }
  // The generator connects to the app's own address; the rules bring it to the inbound listener.
  return { target: { transport: { tcp: env.upstream }, shape: 'origin', authority: upstreamAddr(env), netns: env.netns }, proxyPid: sidecar.pid, teardown };
}

const inboundRow = (mode: 'redirect' | 'tproxy', originalSource = false): Mode => ({
  name: `inbound-capture-${mode}${originalSource ? '-source' : ''}`,
  title: `inbound capture (nftables), ${mode === 'redirect' ? 'NAT REDIRECT' : 'TPROXY'}${originalSource ? ', original source' : ''} → app`,
  group: 'transparent',
  unavailable: () => unavailable('nftables'),
  setup: (env) => setupInbound(env, mode, originalSource),
});

export const transparentModes: readonly Mode[] = [
  backendRow('iptables-nft'),
  backendRow('iptables-legacy'),
  backendRow('nftables'),
  dnsRow('iptables-nft'),
  dnsRow('nftables'),
  ruleRow(1000, 'linear'),
  ruleRow(10000, 'linear'),
  ruleRow(1000, 'set'),
  ruleRow(10000, 'set'),
  inboundRow('redirect'),
  inboundRow('tproxy'),
  inboundRow('tproxy', true),
];
