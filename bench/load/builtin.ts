// Runs one job of the built-in generator in its own process and returns its result.
import { fileURLToPath } from 'node:url';
import type { Job } from './builtin-worker.js';
import { runPlaced } from './run-in.js';

const WORKER = fileURLToPath(new URL('./builtin-worker.js', import.meta.url));

export async function runBuiltin<T>(job: Job): Promise<T> {
  const seconds = 'seconds' in job ? job.seconds : 60;
  const out = await runPlaced(job.target, [process.execPath, WORKER, JSON.stringify(job)], (seconds + 30) * 1000);
  return JSON.parse(out) as T;
}
