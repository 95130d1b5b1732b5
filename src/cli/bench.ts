// `dreammesh bench [--quick] [--modes a,b] [--out DIR]`: the same workloads through every
// way into the mesh, side by side with direct and HAProxy, in one run on this machine.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { selectModes, type Mode } from '../../bench/modes.js';
import { runBench, PROFILES, type BenchProfile } from '../../bench/run-bench.js';
import { writeReport } from '../../bench/write-report.js';
import { renderTable } from '../../bench/report/table.js';
import { requireOptional } from '../core/optional-dependency.js';
import { spawnSync } from 'node:child_process';
import { runH2Bench, renderH2Table } from '../../bench/h2-bench.js';

const USAGE = 'usage: dreammesh bench [--quick] [--modes direct,explicit,...] [--out DIR] [--rate N] [--builtin] | dreammesh bench --h2 [--quick]';

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        modes: { type: 'string' },
        out: { type: 'string', default: 'bench-report' },
        rate: { type: 'string' },
        builtin: { type: 'boolean', default: false },
        h2: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`dreammesh bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.h2) return h2Bench(values.quick);
  let modes: Mode[];
  try {
    modes = selectModes(
      values.modes
        ?.split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      values.quick,
    );
  } catch (e) {
    process.stderr.write(`dreammesh bench: ${(e as Error).message}\n`);
    return 2;
  }
  let profile: BenchProfile = values.quick ? PROFILES.quick : PROFILES.full;
  if (values.rate !== undefined) {
    const rate = Number(values.rate);
    if (!Number.isInteger(rate) || rate < 1) {
      process.stderr.write(`dreammesh bench: --rate must be a positive integer, not "${values.rate}"\n`);
      return 2;
    }
    profile = { ...profile, rate };
  }
  // The built-in load generator measures every run; refuse before starting anything without it.
  requireOptional('undici', 'dreammesh bench (its load generator)');

  // Every process the run starts inherits this mark, so leftovers can be found (and tested for).
  process.env.DREAMMESH_BENCH_RUN = resolve(values.out);
  // Ctrl-C stops after the current step; clean-up runs and a partial report is written.
  const abort = new AbortController();
  const onSignal = (): void => {
    if (abort.signal.aborted) return;
    process.stderr.write('\ndreammesh bench: interrupted, cleaning up and writing a partial report\n');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const outcome = await runBench({ profile, modes, signal: abort.signal, progress: (l) => process.stderr.write(`${l}\n`), builtinOnly: values.builtin });
    const { figures, files, chartsSkipped } = await writeReport(values.out, outcome, profile);
    if (chartsSkipped !== undefined) process.stderr.write(`dreammesh bench: no charts drawn: ${chartsSkipped}\n`);
    process.stdout.write(`${renderTable(figures)}\n\n${outcome.generators.wrk ? '' : '(all rows measured with the built-in generator)\n'}report: ${files.map((f) => `${values.out}/${f}`).join(', ')}\n`);
    return outcome.interrupted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** HTTP/2 rows: h2load through explicit h2c and through HAProxy `proto h2` (needs h2load and haproxy). */
async function h2Bench(quick: boolean): Promise<number> {
  for (const bin of ['h2load', 'haproxy']) {
    if (!hasBinary(bin)) {
      process.stderr.write(`dreammesh bench --h2: ${bin} is not installed (scripts/setup-system.sh installs it)\n`);
      return 2;
    }
  }
  const rows = await runH2Bench({ requests: quick ? 50_000 : 200_000, connections: 4, streams: 16, progress: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${renderH2Table(rows)}\n\n${rows.map((r) => `${r.workload} / ${r.proxy}: ${r.command}`).join('\n')}\n`);
  return 0;
}

function hasBinary(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).error === undefined;
}
