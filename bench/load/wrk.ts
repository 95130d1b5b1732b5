// Max-throughput runs with wrk (Debian package), the real load generator, where it can
// reach the row: TCP, origin-form or absolute-form (set by a one-line Lua script).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadTarget, ThroughputResult } from './target.js';
import { runPlaced } from './run-in.js';

export function wrkAvailable(): boolean {
  try {
    execFileSync('wrk', ['-v'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    // wrk -v exits 1 after printing its version; only a missing binary is ENOENT.
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export function wrkCanReach(t: LoadTarget): boolean {
  return 'tcp' in t.transport && t.shape !== 'connect';
}

export function parseWrk(out: string, seconds: number): ThroughputResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
  if (rps === null || total === null) throw new Error(`unexpected wrk output: ${out.slice(0, 200)}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const requests = Number(total[1]) - non2xx;
  return { requests, errors: non2xx + sockErrors, seconds, rps: Number(rps[1]) * (requests / Math.max(1, Number(total[1]))) };
}

export async function runWrk(t: LoadTarget, opts: { connections: number; seconds: number; newConnection: boolean }): Promise<ThroughputResult> {
  if (!('tcp' in t.transport)) throw new Error('wrk cannot reach a Unix socket');
  const { host, port } = t.transport.tcp;
  const dir = mkdtempSync(join(tmpdir(), 'dm-wrk-'));
  try {
    const args = ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '-H', `Host: ${t.authority}`];
    if (opts.newConnection) args.push('-H', 'Connection: close');
    if (t.shape === 'absolute') {
      const script = join(dir, 'absolute.lua');
      writeFileSync(script, `wrk.path = "http://${t.authority}/"\n`);
      args.push('-s', script);
    }
    args.push(`http://${host.includes(':') ? `[${host}]` : host}:${port}/`);
    const out = await runPlaced(t, ['wrk', ...args], (opts.seconds + 30) * 1000);
    return parseWrk(out, opts.seconds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
