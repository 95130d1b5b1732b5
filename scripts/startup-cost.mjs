#!/usr/bin/env node
// Start-up cost of a sidecar: milliseconds from spawning `dreammesh run` until the admin API's
// /ready answers 200, the CPU time it used until then, and its resident memory after it has
// idled for a while.
// Runs an installed copy (point --install at a directory whose node_modules holds dreammesh, e.g.
// one made with `npm install --omit=optional dreammesh-*.tgz`) or, by default, this checkout.
//   node scripts/startup-cost.mjs [--install DIR] [--config mesh.yaml] [--runs 7] [--idle-ms 5000]
// The config's admin listener must be a fixed TCP address (the script polls it). Without
// --config, a minimal one (one service, no registry backend) is written to a temporary file.
// Prints the median and range of each figure over the runs, one run at a time.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    install: { type: 'string' },
    config: { type: 'string' },
    runs: { type: 'string', default: '7' },
    'idle-ms': { type: 'string', default: '5000' },
  },
});
const cli = values.install ? join(values.install, 'node_modules/dreammesh/dist/src/cli/main.js') : fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const runs = Number(values.runs);
const idleMs = Number(values['idle-ms']);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(idleMs) || idleMs < 0) {
  console.error('startup-cost: --runs must be a positive integer and --idle-ms a non-negative integer');
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), 'dm-startup-'));
let config = values.config;
if (config === undefined) {
  config = join(tmp, 'mesh.yaml');
  writeFileSync(
    config,
    [
      'listeners:',
      '  outbound: 127.0.0.1:25101',
      '  inbound: 127.0.0.1:25106',
      '  admin: 127.0.0.1:25100',
      'app: 127.0.0.1:25180',
      'logLevel: warn',
      'accessLog:',
      '  enabled: false',
      'services:',
      '  users:',
      '    endpoints: [127.0.0.1:25181]',
      '',
    ].join('\n'),
  );
}
const admin = /^\s*admin:\s*(\S+:\d+)\s*$/m.exec(readFileSync(config, 'utf8'))?.[1];
if (admin === undefined) {
  console.error(`startup-cost: ${config} needs a fixed TCP listeners.admin (host:port)`);
  process.exit(2);
}

// The Node flags of the CLI's `#!/usr/bin/env -S node ...` line, so the sidecar runs as the
// `dreammesh` command would run it (and its pid is the one measured).
const shebang = readFileSync(cli, 'utf8').split('\n')[0];
const nodeFlags = (shebang.startsWith('#!') ? (/\bnode\b(.*)$/.exec(shebang)?.[1] ?? '') : '').split(/\s+/).filter((f) => f !== '');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readyStatus = () =>
  new Promise((resolve) => {
    const req = http.get(`http://${admin}/ready`, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
  });
// utime + stime from /proc/PID/stat (clock ticks, 100 per second on Linux): unlike the wall
// clock, the CPU a start-up costs barely changes when the machine is busy.
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function once() {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...nodeFlags, cli, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise((r) => child.once('exit', r));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sidecar exited with ${child.exitCode}:\n${err}`);
      if (performance.now() - t0 > 30_000) throw new Error(`not ready in 30 s:\n${err}`);
      if ((await readyStatus()) === 200) break;
      await sleep(2);
    }
    const readyMs = performance.now() - t0;
    const cpu = cpuMs(child.pid);
    await sleep(idleMs);
    return { readyMs, cpu, rss: rssMiB(child.pid) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const stat = (xs, digits) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 2)].toFixed(digits)} (${s[0].toFixed(digits)}–${s[s.length - 1].toFixed(digits)})`;
};
try {
  const results = [];
  for (let i = 0; i < runs; i++) results.push(await once());
  const fig = (key, digits) =>
    stat(
      results.map((r) => r[key]),
      digits,
    );
  console.log(`node ${[...nodeFlags, cli].join(' ')}`);
  console.log(`  time to /ready: ${fig('readyMs', 0)} ms`);
  console.log(`  CPU until ready: ${fig('cpu', 0)} ms`);
  console.log(`  idle RSS after ${idleMs} ms: ${fig('rss', 1)} MiB`);
  console.log(`  (median (min–max) of ${runs} runs)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
