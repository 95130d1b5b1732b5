// SVG charts for the report, drawn by Vega-Lite (rendered headless, no browser needed).
// vega and vega-lite are optional dependencies (~24 MB), loaded only when a chart is drawn.
import type { TopLevelSpec } from 'vega-lite';
import { importOptional } from '../../src/core/optional-dependency.js';
import type { Figures } from './figures.js';

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const vega = await importOptional<typeof import('vega')>('vega', 'bench charts');
  const { compile } = await importOptional<typeof import('vega-lite')>('vega-lite', 'bench charts');
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const measured = (figures: readonly Figures[]): Figures[] => figures.filter((f) => f.note === undefined);

/** Keep-alive and new-connection throughput, one bar pair per row. */
export function throughputChart(figures: readonly Figures[]): Promise<string> {
  const values = measured(figures).flatMap((f) => [
    { mode: f.mode, workload: 'keep-alive', rps: f.keepAliveRps ?? 0 },
    { mode: f.mode, workload: 'new connection per request', rps: f.newConnRps ?? 0 },
  ]);
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Max throughput per mode (requests/s, higher is better)',
    data: { values },
    mark: 'bar',
    width: 520,
    encoding: {
      y: { field: 'mode', type: 'nominal', sort: null, title: null, axis: { labelLimit: 400 } },
      yOffset: { field: 'workload' },
      x: { field: 'rps', type: 'quantitative', title: 'requests/s' },
      color: { field: 'workload', type: 'nominal', legend: { orient: 'bottom', title: null, labelLimit: 400 } },
    },
  });
}

/** Latency percentiles at the fixed rate, one line per row. */
export function latencyChart(figures: readonly Figures[], rate: number): Promise<string> {
  const values = measured(figures).flatMap((f) =>
    (
      [
        ['p50', f.p50],
        ['p90', f.p90],
        ['p99', f.p99],
        ['p99.9', f.p999],
      ] as const
    ).flatMap(([q, v]) => (v !== undefined && Number.isFinite(v) ? [{ mode: f.mode, percentile: q, ms: v }] : [])),
  );
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Latency distribution at ${rate} requests/s (ms, lower is better)`,
    data: { values },
    mark: { type: 'line', point: true },
    width: 520,
    height: 300,
    encoding: {
      x: { field: 'percentile', type: 'ordinal', sort: ['p50', 'p90', 'p99', 'p99.9'], title: null },
      y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms, log scale)' },
      color: { field: 'mode', type: 'nominal', sort: null, legend: { labelLimit: 400 } },
    },
  });
}

/** Throughput of transparent capture against the number of unrelated rules in front. */
export function ruleScalingChart(figures: readonly Figures[]): Promise<string> | null {
  const point = (f: Figures, count: number, shape: string): Array<{ rules: number; shape: string; rps: number }> => [
    { rules: count, shape: `${shape}, new connection`, rps: f.newConnRps ?? 0 },
    { rules: count, shape: `${shape}, keep-alive`, rps: f.keepAliveRps ?? 0 },
  ];
  const rows = measured(figures);
  const values = rows.filter((f) => f.rules !== undefined).flatMap((f) => point(f, f.rules!.count, f.rules!.shape));
  if (values.length === 0) return null;
  // The rule rows use the nftables backend: its row is the zero-rule point of both shapes.
  const zero = rows.find((f) => f.mode === 'transparent-nftables');
  if (zero !== undefined) values.unshift(...point(zero, 0, 'linear'), ...point(zero, 0, 'set'));
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Transparent capture vs unrelated rules in front (requests/s)',
    data: { values },
    mark: { type: 'line', point: true },
    width: 520,
    height: 300,
    encoding: {
      x: { field: 'rules', type: 'ordinal', title: 'unrelated rules' },
      y: { field: 'rps', type: 'quantitative', title: 'requests/s' },
      color: { field: 'shape', type: 'nominal', legend: { labelLimit: 400 } },
    },
  });
}
