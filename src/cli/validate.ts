// `dreammesh validate FILE`: the same parse + schema path as `run` and hot reloads, then the
// start-up checks `run` makes before binding (files, addon, capture settings). Says what it
// checked and what only a real start can tell. Exit 0 valid, 1 not, 2 usage.
import { loadConfigFile } from '../config/load.js';
import { preflight } from '../config/preflight.js';
import { isMeshError } from '../core/errors.js';

export async function main(argv: string[]): Promise<number> {
  const file = argv[0];
  if (file === undefined || argv.length > 1 || file.startsWith('-')) {
    process.stderr.write('usage: dreammesh validate FILE\n');
    return 2;
  }
  let report;
  let services: number;
  let config;
  try {
    config = await loadConfigFile(file);
    services = Object.keys(config.services).length;
    report = await preflight(config);
  } catch (e) {
    process.stderr.write(`${file}: ${isMeshError(e) ? e.message : String(e)}\n`);
    return 1;
  }
  if (report.problems.length > 0) {
    for (const p of report.problems) process.stderr.write(`${file}: ${p.code}: ${p.message}\n`);
    return 1;
  }
  const lines = [`${file}: valid (${services} inline service${services === 1 ? '' : 's'})`];
  for (const c of report.checked) lines.push(`  checked: ${c}`);
  for (const u of report.unchecked) lines.push(`  not checked: ${u}`);
  if (config.listeners.inbound === undefined) lines.push('  inbound: off (no app)');
  for (const w of report.warnings) process.stderr.write(`${file}: warning: ${w}\n`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
