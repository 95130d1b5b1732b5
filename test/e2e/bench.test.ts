// `dreammesh bench --quick` as a smoke test of the harness (not a timed assertion): rows
// run, the report files are written, Ctrl-C leaves a partial report and no processes. As
// root the bench builds its own network namespaces, so this runs with the e2e suite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/sidecar.js';

const exec = promisify(execFile);

/** Pids whose environment carries the bench run's mark. */
async function processesMarked(mark: string): Promise<string[]> {
  const pids: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const env = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
    if (env.split('\0').includes(mark)) pids.push(pid);
  }
  return pids;
}

interface Report {
  interrupted: boolean;
  rows: Array<{ mode: string; skipped?: string; error?: string; keepAlive?: Record<string, { rps: number }>; latency?: { p99: number } }>;
  figures: Array<{ mode: string; keepAliveVsDirect?: number }>;
  machine: { kernel: string; node: string };
}

test('bench --quick measures direct, explicit and proxy side by side and writes the report', { timeout: 150_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'dm-bench-test-'));
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, 'bench', '--quick', '--modes', 'direct,explicit,proxy', '--out', out], { timeout: 140_000 });
    assert.match(stderr, /\[1\/3\] direct: keep-alive/);
    assert.match(stdout, /^mode\s+keep-alive req\/s\s+×direct/m);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    assert.equal(report.interrupted, false);
    assert.equal(report.machine.node, process.version);
    assert.deepEqual(
      report.rows.map((r) => r.mode),
      ['direct', 'explicit', 'proxy'],
    );
    for (const row of report.rows) {
      assert.equal(row.error, undefined, `${row.mode}: ${row.error}`);
      const rps = Object.values(row.keepAlive ?? {}).map((r) => r.rps);
      assert.ok(rps.length > 0 && rps.every((n) => n > 0), `${row.mode} measured a throughput`);
      assert.ok(row.latency !== undefined && row.latency.p99 > 0, `${row.mode} measured latency`);
    }
    assert.equal(report.figures.find((f) => f.mode === 'direct')!.keepAliveVsDirect, 1);
    const files = await readdir(out);
    for (const f of ['report.json', 'report.md', 'throughput.svg', 'latency.svg']) assert.ok(files.includes(f), f);
    assert.match(await readFile(join(out, 'latency.svg'), 'utf8'), /^<svg/);
    assert.match(await readFile(join(out, 'report.md'), 'utf8'), /\| explicit \| [\d,]+/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('bench refuses an unknown mode before measuring anything', async () => {
  const r = await exec(process.execPath, [CLI, 'bench', '--quick', '--modes', 'explicit,teleport']).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown mode teleport; known: direct, explicit/);
});

test('Ctrl-C stops the run, removes its processes and writes a partial report', { timeout: 90_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'dm-bench-int-'));
  try {
    const child = spawn(process.execPath, [CLI, 'bench', '--quick', '--modes', 'direct,explicit', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        if (/\[1\/2\] direct: keep-alive/.test(err) && child.signalCode === null) child.kill('SIGINT');
      });
      child.once('exit', (c) => resolve(c));
    });
    assert.equal(code, 130, err);
    assert.match(err, /interrupted, cleaning up/);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    assert.equal(report.interrupted, true);
    assert.deepEqual(
      report.rows.map((r) => r.mode),
      ['direct'],
    );
    // No process the run started (sidecar, upstream, generator) is left behind.
    assert.deepEqual(await processesMarked(`DREAMMESH_BENCH_RUN=${out}`), []);
    // Nor its network namespaces.
    const { stdout: ns } = await exec('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
    assert.doesNotMatch(ns, new RegExp(`^dmb${child.pid}[cs]\\b`, 'm'));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
