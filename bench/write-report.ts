// Writes a run's report.json, report.md and SVG charts to the output directory.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { figuresOf, type Figures } from './report/figures.js';
import { renderMarkdown } from './report/markdown.js';
import { throughputChart, latencyChart, ruleScalingChart } from './report/charts.js';
import { machineFacts } from './machine.js';
import { isMeshError } from '../src/core/errors.js';
import type { BenchProfile, RunOutcome } from './run-bench.js';

export interface WrittenReport {
  readonly figures: Figures[];
  readonly files: string[];
  /** Why no charts were drawn (their optional packages are not installed), if so. */
  readonly chartsSkipped?: string;
}

export async function writeReport(out: string, outcome: RunOutcome, profile: BenchProfile): Promise<WrittenReport> {
  await mkdir(out, { recursive: true });
  const figures = figuresOf(outcome.rows);
  const machine = machineFacts();
  const when = new Date().toISOString();
  // Drawn one after another, each only when its turn comes, so a failure is never left unhandled.
  const charts: Array<[string, () => Promise<string> | null]> = [
    ['throughput.svg', () => throughputChart(figures)],
    ['latency.svg', () => latencyChart(figures, profile.rate)],
    ['rule-scaling.svg', () => ruleScalingChart(figures)],
  ];
  const written: string[] = [];
  let chartsSkipped: string | undefined;
  try {
    for (const [name, draw] of charts) {
      const svg = draw();
      if (svg === null) continue;
      await writeFile(join(out, name), await svg);
      written.push(name);
    }
  } catch (e) {
    // Without vega/vega-lite the figures still go to report.json and report.md.
    if (!isMeshError(e) || e.code !== 'MESH_ERR_OPTIONAL_DEPENDENCY') throw e;
    chartsSkipped = `${e.code}: ${e.message}`;
  }
  const json = { when, machine, profile, interrupted: outcome.interrupted, generators: outcome.generators, rows: outcome.rows, figures };
  await writeFile(join(out, 'report.json'), `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(join(out, 'report.md'), renderMarkdown(figures, { machine, profile, interrupted: outcome.interrupted, when, charts: written }));
  return { figures, files: ['report.json', 'report.md', ...written], ...(chartsSkipped === undefined ? {} : { chartsSkipped }) };
}
