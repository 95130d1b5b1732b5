// `dreammesh bench [--quick] [--modes a,b] [--out DIR]`: the same workloads through every
// way into the mesh, side by side with direct and HAProxy, in one run on this machine.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { selectModes, type Mode } from '../../bench/modes.js';
import { runBench, PROFILES, type BenchProfile } from '../../bench/run-bench.js';
import { writeReport } from '../../bench/write-report.js';
import { renderTable } from '../../bench/report/table.js';
import { requireOptional } from '../core/optional-dependency.js';

const USAGE = 'usage: dreammesh bench [--quick] [--modes direct,explicit,...] [--out DIR] [--rate N] [--builtin]';

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
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`dreammesh bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
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
