// One bench run: the same workloads through every selected row, one row at a time, with
// the row's proxy process measured from /proc. Clean-up always runs, also on Ctrl-C; an
// interrupted run still returns what it measured.
import type { Mode } from './modes.js';
import type { LoadTarget, ThroughputResult, LatencyResult, BulkResult } from './load/target.js';
import { runBuiltin } from './load/builtin.js';
import { runWrk, wrkAvailable, wrkCanReach } from './load/wrk.js';
import { cpuSeconds, peakRssMiB, rssMiB } from './proc-stats.js';
import { startUpstream } from './processes.js';
import { scratchDir, type BenchEnv } from './bench-env.js';
import { canUseNetns, createTopology, inNetns } from './topology.js';
import { fmt } from './report/figures.js';
import { handshakes } from './mtls-modes.js';

export type Generator = 'wrk' | 'builtin';

export interface BenchProfile {
  readonly warmupSeconds: number;
  readonly throughputSeconds: number;
  readonly latencySeconds: number;
  readonly rate: number;
  readonly connections: number;
  readonly bulkBytes: number;
}

export const PROFILES: Record<'quick' | 'full', BenchProfile> = {
  quick: { warmupSeconds: 0.3, throughputSeconds: 1, latencySeconds: 1, rate: 300, connections: 16, bulkBytes: 32 * 1024 * 1024 },
  full: { warmupSeconds: 2, throughputSeconds: 5, latencySeconds: 8, rate: 1000, connections: 32, bulkBytes: 512 * 1024 * 1024 },
};

export interface RowResult {
  readonly mode: string;
  readonly title: string;
  readonly group: Mode['group'];
  readonly rules?: Mode['rules'];
  skipped?: string;
  error?: string;
  /** Max throughput with keep-alive connections, per generator that measured it. */
  keepAlive?: Partial<Record<Generator, ThroughputResult>>;
  /** Max throughput with a new TCP connection per request. */
  newConnection?: Partial<Record<Generator, ThroughputResult>>;
  latency?: LatencyResult;
  bulk?: BulkResult;
  /** Proxy CPU (user + system) per request during the keep-alive run, microseconds. */
  cpuUsPerRequest?: number;
  /** Proxy RSS once set up, before any request. */
  idleRssMiB?: number;
  /** Proxy peak RSS by the end of the keep-alive runs (before new-connection and bulk). */
  keepAliveRssMiB?: number;
  /** Proxy peak RSS over the whole row (bulk included). */
  peakRssMiB?: number;
  /** mTLS rows: per-request time on new vs kept-alive mTLS connections, and their difference (ms). */
  mtlsHandshake?: { newConnMs: number; keepAliveMs: number; handshakeMs: number };
}

export interface RunOptions {
  readonly profile: BenchProfile;
  readonly modes: readonly Mode[];
  readonly signal: AbortSignal;
  readonly progress: (line: string) => void;
  /** Force the built-in generator even where wrk is installed. */
  readonly builtinOnly?: boolean;
}

export interface RunOutcome {
  readonly rows: RowResult[];
  readonly interrupted: boolean;
  readonly generators: { readonly wrk: boolean };
}

const BASELINES = new Set(['direct', 'explicit']);

export async function runBench(opts: RunOptions): Promise<RunOutcome> {
  const useWrk = !opts.builtinOnly && wrkAvailable();
  if (!useWrk) opts.progress(opts.builtinOnly ? 'load generator: built-in (requested)' : 'load generator: wrk not installed, using the built-in generator for every row');
  const scratch = scratchDir();
  // As root, every row crosses the same veth pair between two namespaces; otherwise loopback.
  const topology = canUseNetns() === null ? createTopology() : undefined;
  if (topology === undefined) opts.progress(`rows run over loopback (${canUseNetns() ?? ''}); transparent rows are skipped`);
  const rows: RowResult[] = [];
  let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined;
  try {
    upstream = topology ? await startUpstream(topology.serverAddr, inNetns(topology.server, [])) : await startUpstream();
    const env: BenchEnv = {
      upstream: { host: topology?.serverAddr ?? '127.0.0.1', port: upstream.port },
      dir: scratch.dir,
      ...(topology ? { netns: topology.client, serverNetns: topology.server } : {}),
    };
    for (const [i, mode] of opts.modes.entries()) {
      if (opts.signal.aborted) break;
      const row: RowResult = { mode: mode.name, title: mode.title, group: mode.group, ...(mode.rules ? { rules: mode.rules } : {}) };
      rows.push(row);
      const say = (s: string): void => opts.progress(`[${i + 1}/${opts.modes.length}] ${mode.name}: ${s}`);
      const why = mode.unavailable();
      if (why !== null) {
        row.skipped = why;
        say(`skipped (${why})`);
        continue;
      }
      try {
        await measureRow(mode, row, env, opts, useWrk, say);
      } catch (e) {
        row.error =
          (e as Error).message
            .split('\n')
            .filter((l) => l.trim() !== '')
            .slice(-1)[0] ?? 'failed';
        say(`failed: ${row.error}`);
      }
    }
  } finally {
    await upstream?.stop();
    topology?.remove();
    scratch.remove();
  }
  return { rows, interrupted: opts.signal.aborted, generators: { wrk: useWrk } };
}

async function measureRow(mode: Mode, row: RowResult, env: BenchEnv, opts: RunOptions, useWrk: boolean, say: (s: string) => void): Promise<void> {
  const { profile: p, signal } = opts;
  say('starting');
  const setup = await mode.setup(env);
  const hs = handshakes.get(mode.name);
  if (hs !== undefined) row.mtlsHandshake = hs;
  try {
    const t = setup.target;
    if (setup.proxyPid !== undefined) row.idleRssMiB = rssMiB(setup.proxyPid);
    // Warm up: JIT, pools, ARP/conntrack entries.
    const warm = await runBuiltin<ThroughputResult>({ kind: 'throughput', target: t, connections: p.connections, seconds: p.warmupSeconds, newConnection: false });
    if (warm.requests === 0) throw new Error(`no request succeeded through this row (${warm.errors} failed)`);
    const gens: Generator[] = useWrk && wrkCanReach(t) ? ['wrk'] : ['builtin'];
    // Baselines are also measured with the built-in generator, so rows only it can reach still get ratios.
    if (useWrk && BASELINES.has(mode.name)) gens.push('builtin');

    row.keepAlive = {};
    for (const g of gens) {
      if (signal.aborted) return;
      const cpu0 = setup.proxyPid !== undefined ? cpuSeconds(setup.proxyPid) : NaN;
      const r = await throughput(g, t, p, false);
      row.keepAlive[g] = r;
      if (g === gens[0] && setup.proxyPid !== undefined) row.cpuUsPerRequest = ((cpuSeconds(setup.proxyPid) - cpu0) * 1e6) / Math.max(1, r.requests);
      say(`keep-alive ${Math.round(r.rps).toLocaleString('en')} req/s (${g})`);
    }
    if (setup.proxyPid !== undefined) row.keepAliveRssMiB = peakRssMiB(setup.proxyPid);
    row.newConnection = {};
    for (const g of gens) {
      if (signal.aborted) return;
      const r = await throughput(g, t, p, true);
      row.newConnection[g] = r;
      say(`new connection per request ${Math.round(r.rps).toLocaleString('en')} req/s (${g})`);
    }
    if (signal.aborted) return;
    row.latency = await runBuiltin<LatencyResult>({ kind: 'latency', target: t, connections: p.connections, seconds: p.latencySeconds, rate: p.rate });
    say(`at ${p.rate} req/s: p50 ${fmt.ms(row.latency.p50)} ms, p99 ${fmt.ms(row.latency.p99)} ms`);
    if (signal.aborted) return;
    row.bulk = await runBuiltin<BulkResult>({ kind: 'bulk', target: t, bytes: p.bulkBytes });
    say(`bulk ${row.bulk.gbps.toFixed(2)} Gbit/s`);
    if (setup.proxyPid !== undefined) row.peakRssMiB = peakRssMiB(setup.proxyPid);
  } finally {
    await setup.teardown();
  }
}

function throughput(g: Generator, t: LoadTarget, p: BenchProfile, newConnection: boolean): Promise<ThroughputResult> {
  if (g === 'wrk') return runWrk(t, { connections: p.connections, seconds: p.throughputSeconds, newConnection });
  return runBuiltin<ThroughputResult>({ kind: 'throughput', target: t, connections: p.connections, seconds: p.throughputSeconds, newConnection });
}
