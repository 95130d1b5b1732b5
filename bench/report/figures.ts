// Turns raw rows into the figures people compare: the headline throughput of each row and
// its ratios against direct and explicit mode, always measured by the same generator in
// the same run.
import type { RowResult, Generator } from '../run-bench.js';
import type { ThroughputResult } from '../load/target.js';

export interface Figures {
  readonly mode: string;
  readonly title: string;
  readonly note?: string;
  readonly keepAliveRps?: number;
  readonly keepAliveGenerator?: Generator;
  readonly keepAliveVsDirect?: number;
  readonly keepAliveVsExplicit?: number;
  readonly newConnRps?: number;
  readonly newConnVsDirect?: number;
  readonly newConnVsExplicit?: number;
  readonly p50?: number;
  readonly p90?: number;
  readonly p99?: number;
  readonly p999?: number;
  readonly bulkGbps?: number;
  readonly bulkVsDirect?: number;
  readonly cpuUsPerRequest?: number;
  readonly idleRssMiB?: number;
  readonly keepAliveRssMiB?: number;
  readonly peakRssMiB?: number;
  readonly rules?: RowResult['rules'];
}

type Runs = Partial<Record<Generator, ThroughputResult>> | undefined;

function primary(runs: Runs): [Generator, ThroughputResult] | undefined {
  if (runs?.wrk) return ['wrk', runs.wrk];
  if (runs?.builtin) return ['builtin', runs.builtin];
  return undefined;
}

function ratio(runs: Runs, base: Runs): number | undefined {
  const p = primary(runs);
  if (p === undefined) return undefined;
  const b = base?.[p[0]];
  return b && b.rps > 0 ? p[1].rps / b.rps : undefined;
}

export function figuresOf(rows: readonly RowResult[]): Figures[] {
  const direct = rows.find((r) => r.mode === 'direct');
  const explicit = rows.find((r) => r.mode === 'explicit');
  return rows.map((r) => {
    const note = r.skipped !== undefined ? `skipped: ${r.skipped}` : r.error !== undefined ? `failed: ${r.error}` : undefined;
    const ka = primary(r.keepAlive);
    const nc = primary(r.newConnection);
    const directBulk = direct?.bulk?.gbps;
    return {
      mode: r.mode,
      title: r.title,
      ...(note !== undefined ? { note } : {}),
      ...(r.rules ? { rules: r.rules } : {}),
      keepAliveRps: ka?.[1].rps,
      keepAliveGenerator: ka?.[0],
      keepAliveVsDirect: ratio(r.keepAlive, direct?.keepAlive),
      keepAliveVsExplicit: ratio(r.keepAlive, explicit?.keepAlive),
      newConnRps: nc?.[1].rps,
      newConnVsDirect: ratio(r.newConnection, direct?.newConnection),
      newConnVsExplicit: ratio(r.newConnection, explicit?.newConnection),
      p50: r.latency?.p50,
      p90: r.latency?.p90,
      p99: r.latency?.p99,
      p999: r.latency?.p999,
      bulkGbps: r.bulk?.gbps,
      bulkVsDirect: r.bulk && directBulk ? r.bulk.gbps / directBulk : undefined,
      cpuUsPerRequest: r.cpuUsPerRequest,
      idleRssMiB: r.idleRssMiB,
      keepAliveRssMiB: r.keepAliveRssMiB,
      peakRssMiB: r.peakRssMiB,
    };
  });
}

export const fmt = {
  rps: (n: number | undefined): string => (n === undefined || n === null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en')),
  ratio: (n: number | undefined): string => (n === undefined || n === null || !Number.isFinite(n) ? '—' : `${n.toFixed(2)}×`),
  ms: (n: number | undefined): string => (n === undefined || n === null || !Number.isFinite(n) ? '—' : n < 10 ? n.toFixed(2) : n.toFixed(1)),
  num: (n: number | undefined, digits = 1): string => (n === undefined || n === null || !Number.isFinite(n) ? '—' : n.toFixed(digits)),
};

export interface Column {
  readonly head: string;
  readonly cell: (f: Figures) => string;
}

export const COLUMNS: readonly Column[] = [
  { head: 'mode', cell: (f) => f.mode },
  { head: 'keep-alive req/s', cell: (f) => fmt.rps(f.keepAliveRps) + (f.keepAliveGenerator === 'builtin' ? '*' : '') },
  { head: '×direct', cell: (f) => fmt.ratio(f.keepAliveVsDirect) },
  { head: '×explicit', cell: (f) => fmt.ratio(f.keepAliveVsExplicit) },
  { head: 'new-conn req/s', cell: (f) => fmt.rps(f.newConnRps) },
  { head: '×direct', cell: (f) => fmt.ratio(f.newConnVsDirect) },
  { head: 'p50 ms', cell: (f) => fmt.ms(f.p50) },
  { head: 'p90 ms', cell: (f) => fmt.ms(f.p90) },
  { head: 'p99 ms', cell: (f) => fmt.ms(f.p99) },
  { head: 'p99.9 ms', cell: (f) => fmt.ms(f.p999) },
  { head: 'bulk Gbit/s', cell: (f) => fmt.num(f.bulkGbps, 2) },
  { head: 'CPU µs/req', cell: (f) => fmt.num(f.cpuUsPerRequest, 0) },
  { head: 'RSS idle', cell: (f) => fmt.num(f.idleRssMiB, 0) },
  { head: 'RSS keep-alive', cell: (f) => fmt.num(f.keepAliveRssMiB, 0) },
  { head: 'peak RSS MiB', cell: (f) => fmt.num(f.peakRssMiB, 0) },
];
