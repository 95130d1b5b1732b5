// Runs a generator process where the row needs it: inside the row's network namespace.
import { execFile } from 'node:child_process';
import type { LoadTarget } from './target.js';
import { inNetns } from '../topology.js';

/** Runs argv (placed per the target) and resolves with its stdout; rejects with its stderr. */
export function runPlaced(t: LoadTarget, argv: readonly string[], timeoutMs: number): Promise<string> {
  const [cmd, ...args] = inNetns(t.netns, argv);
  return new Promise((resolve, reject) => {
    execFile(cmd!, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}
