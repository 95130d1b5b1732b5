// The rows of a bench run: each is one way for the same workload to reach the same upstream.
// A mode says what it needs (so a missing piece skips the row with a reason) and how to set
// itself up; everything after setup is the same for every row.
import { execFileSync } from 'node:child_process';
import type { LoadTarget } from './load/target.js';
import { sidecarConfig, joinDir, type BenchEnv } from './bench-env.js';
import { startSidecar, startHaproxy, freePort, type BenchProcess } from './processes.js';
import { transparentModes } from './transparent-modes.js';
import { inNetns } from './topology.js';
import { mtlsModes } from './mtls-modes.js';

export interface ModeSetup {
  readonly target: LoadTarget;
  /** The process in the path whose CPU and memory we report (sidecar or HAProxy). */
  readonly proxyPid?: number;
  teardown(): Promise<void>;
}

export interface Mode {
  readonly name: string;
  readonly title: string;
  readonly group: 'baseline' | 'explicit' | 'proxy' | 'reference' | 'transparent';
  /** Why this row cannot run here, or null. */
  unavailable(): string | null;
  setup(env: BenchEnv): Promise<ModeSetup>;
  /** For rule-scaling rows: how many unrelated rules sit in front of DreamMesh's. */
  readonly rules?: { readonly count: number; readonly shape: 'linear' | 'set' };
}

export function hasBinary(bin: string, args: readonly string[] = ['--version']): boolean {
  try {
    execFileSync(bin, args, { stdio: 'ignore' });
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export const upstreamAddr = (env: BenchEnv): string => `${env.upstream.host}:${env.upstream.port}`;

function tcpOf(outbound: string): { host: string; port: number } {
  const i = outbound.lastIndexOf(':');
  return { host: outbound.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(outbound.slice(i + 1)) };
}

async function sidecarRow(env: BenchEnv, config: Record<string, unknown>, target: (p: BenchProcess & { outbound: string }) => Omit<LoadTarget, 'netns'>): Promise<ModeSetup> {
  const p = await startSidecar(config, inNetns(env.netns, []));
  return { target: at(env, target(p)), proxyPid: p.pid, teardown: () => p.stop() };
}

/** The target, placed in the row's namespace when there is one. */
const at = (env: BenchEnv, t: Omit<LoadTarget, 'netns'>): LoadTarget => (env.netns === undefined ? t : { ...t, netns: env.netns });

const always = (): null => null;

/** HAProxy in front of the upstream: the reference sidecar (http) and tunnel (tcp). */
function haproxyRow(mode: 'http' | 'tcp', name: string, title: string): Mode {
  return {
    name,
    title,
    group: 'reference',
    unavailable: needsHaproxy,
    setup: async (env) => {
      const h = await startHaproxy(mode, env.upstream, env.netns);
      return { target: at(env, { transport: { tcp: { host: '127.0.0.1', port: h.port } }, shape: 'origin', authority: 'bench' }), proxyPid: h.pid, teardown: () => h.stop() };
    },
  };
}
const needsHaproxy = (): string | null => (hasBinary('haproxy', ['-v']) ? null : 'haproxy is not installed (Debian package haproxy)');

export const MODES: readonly Mode[] = [
  {
    name: 'direct',
    title: 'direct (no sidecar)',
    group: 'baseline',
    unavailable: always,
    setup: async (env) => ({ target: at(env, { transport: { tcp: env.upstream }, shape: 'origin', authority: upstreamAddr(env) }), teardown: async () => {} }),
  },
  {
    name: 'explicit',
    title: 'explicit, TCP',
    group: 'explicit',
    unavailable: always,
    setup: (env) => sidecarRow(env, sidecarConfig(upstreamAddr(env), '127.0.0.1:0'), (p) => ({ transport: { tcp: tcpOf(p.outbound) }, shape: 'origin', authority: 'bench' })),
  },
  {
    name: 'explicit-unix',
    title: 'explicit, Unix socket',
    group: 'explicit',
    unavailable: always,
    setup: (env) => {
      const path = joinDir(env, 'outbound.sock');
      return sidecarRow(env, sidecarConfig(upstreamAddr(env), `unix:${path}`), () => ({ transport: { unix: path }, shape: 'origin', authority: 'bench' }));
    },
  },
  {
    name: 'proxy',
    title: 'forward proxy, absolute-form',
    group: 'proxy',
    unavailable: always,
    setup: (env) => sidecarRow(env, sidecarConfig(upstreamAddr(env), '127.0.0.1:0'), (p) => ({ transport: { tcp: tcpOf(p.outbound) }, shape: 'absolute', authority: 'bench' })),
  },
  {
    name: 'inbound',
    title: 'inbound listener → app',
    group: 'explicit',
    unavailable: always,
    setup: async (env) => {
      const port = await freePort();
      const config = { ...sidecarConfig(upstreamAddr(env), '127.0.0.1:0'), app: upstreamAddr(env), listeners: { outbound: '127.0.0.1:0', inbound: `127.0.0.1:${port}`, admin: '127.0.0.1:0' } };
      return sidecarRow(env, config, () => ({ transport: { tcp: { host: '127.0.0.1', port } }, shape: 'origin', authority: 'bench' }));
    },
  },
  {
    name: 'connect',
    title: 'forward proxy, CONNECT tunnel',
    group: 'proxy',
    unavailable: always,
    setup: (env) => sidecarRow(env, sidecarConfig(upstreamAddr(env), '127.0.0.1:0'), (p) => ({ transport: { tcp: tcpOf(p.outbound) }, shape: 'connect', authority: 'bench:80' })),
  },
  haproxyRow('http', 'haproxy', 'HAProxy, http mode (reference)'),
  haproxyRow('tcp', 'haproxy-tcp', 'HAProxy, tcp mode (tunnel reference)'),
  ...mtlsModes(needsHaproxy),
  ...transparentModes,
];

/** Rows of a --quick run without --modes: one of each kind, so it stays under a minute. */
const QUICK = new Set(['direct', 'explicit', 'explicit-unix', 'proxy', 'inbound', 'connect', 'haproxy', 'transparent-nftables']);

/** Resolves --modes: row names, or group names (`transparent`, `reference`, `proxy`); unknown names are an error. */
export function selectModes(requested: readonly string[] | undefined, quick = false): Mode[] {
  if (requested === undefined || requested.length === 0) return MODES.filter((m) => !quick || QUICK.has(m.name));
  const picked = new Set<Mode>();
  const unknown: string[] = [];
  for (const r of requested) {
    const byName = MODES.filter((m) => m.name === r);
    const hits = byName.length > 0 ? byName : MODES.filter((m) => m.group === r);
    if (hits.length === 0) unknown.push(r);
    for (const h of hits) picked.add(h);
  }
  if (unknown.length > 0) throw new Error(`unknown mode${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${MODES.map((m) => m.name).join(', ')}`);
  // Ratios need the baselines measured in the same run.
  for (const base of ['direct', 'explicit']) picked.add(MODES.find((m) => m.name === base)!);
  return MODES.filter((m) => picked.has(m));
}
