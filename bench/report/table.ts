// The terminal table printed at the end of a run.
import { COLUMNS, type Figures } from './figures.js';

export function renderTable(figures: readonly Figures[]): string {
  const cells = figures.map((f) => COLUMNS.map((c) => c.cell(f)));
  const widths = COLUMNS.map((c, i) => Math.max(c.head.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ');
  const out = [line(COLUMNS.map((c) => c.head)), widths.map((w) => '─'.repeat(w)).join('  ')];
  for (const [i, f] of figures.entries()) out.push(f.note !== undefined ? `${f.mode.padEnd(widths[0]!)}  ${f.note}` : line(cells[i]!));
  return out.join('\n');
}
