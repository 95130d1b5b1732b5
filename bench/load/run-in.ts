// Runs a generator process where the row needs it: inside the row's network namespace and
// as the app's uid (transparent capture matches on the uid that opened the connection).
import { execFile } from 'node:child_process';
import type { LoadTarget } from './target.js';

export function placement(t: LoadTarget, argv: readonly string[]): string[] {
  let cmd = [...argv];
  if (t.uid !== undefined) cmd = ['setpriv', `--reuid=${t.uid}`, `--regid=${t.uid}`, '--clear-groups', ...cmd];
  if (t.netns !== undefined) cmd = ['ip', 'netns', 'exec', t.netns, ...cmd];
  return cmd;
}

/** Runs argv (placed per the target) and resolves with its stdout; rejects with its stderr. */
export function runPlaced(t: LoadTarget, argv: readonly string[], timeoutMs: number): Promise<string> {
  const [cmd, ...args] = placement(t, argv);
  return new Promise((resolve, reject) => {
    execFile(cmd!, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}
