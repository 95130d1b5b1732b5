// report.md: the same figures as the terminal table, with the context needed to read them.
import { COLUMNS, type Figures } from './figures.js';
import type { MachineFacts } from '../machine.js';
import type { BenchProfile } from '../run-bench.js';

export function renderMarkdown(figures: readonly Figures[], ctx: { machine: MachineFacts; profile: BenchProfile; interrupted: boolean; when: string; charts: readonly string[] }): string {
  const m = ctx.machine;
  const p = ctx.profile;
  const rows = figures.map((f) => (f.note !== undefined ? `| ${f.mode} | ${f.note} |${' |'.repeat(COLUMNS.length - 2)}` : `| ${COLUMNS.map((c) => c.cell(f)).join(' | ')} |`));
  const tools = Object.entries(m.tools)
    .map(([k, v]) => `${k}: ${v ?? 'not installed'}`)
    .join('; ');
  return [
    '# DreamMesh bench report',
    '',
    ctx.interrupted ? '**Interrupted: partial results.**\n' : '',
    `Measured ${ctx.when} on ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node.js ${m.node}.`,
    `Tools: ${tools}.`,
    '',
    `Workloads: max throughput over ${p.connections} connections for ${p.throughputSeconds} s (keep-alive, and a new TCP connection per request);`,
    `latency at a fixed ${p.rate} requests/s for ${p.latencySeconds} s, measured from each request's scheduled start;`,
    `bulk: one ${Math.round(p.bulkBytes / 2 ** 20)} MiB response streamed through the path. CPU is the proxy's user+system time per request`,
    'during the keep-alive run (from /proc); DreamMesh rows carry 1,000 other services in their registry.',
    'Ratios compare with direct and explicit mode measured in the same run by the same generator (`*` = built-in generator).',
    '',
    `| ${COLUMNS.map((c) => c.head).join(' | ')} |`,
    `|${COLUMNS.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows,
    '',
    ...ctx.charts.map((c) => `![${c}](${c})`),
    '',
  ].join('\n');
}
