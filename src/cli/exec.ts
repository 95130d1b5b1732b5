// `dreammesh exec --mode explicit|proxy [--config FILE] -- CMD ARGS...`: runs a command with
// the environment `dreammesh env` prints (merged over the current one). The child's exit code
// is ours; a child killed by a signal gives 128+n, as shells do. SIGTERM, SIGHUP, SIGUSR1 and
// SIGUSR2 sent to dreammesh are passed to the child; SIGINT and SIGQUIT are not (a terminal
// already delivers them to the whole foreground process group), but they no longer kill
// dreammesh before the child has finished.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { isMeshError } from '../core/errors.js';
import { meshEnv, parseEnvArgs, UsageError } from './env.js';

const USAGE = 'usage: dreammesh exec --mode explicit|proxy [--config FILE] -- CMD ARGS...';
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
const ABSORBED: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];

/** The child's environment: ours, with the mesh variables on top (Java options prepended). */
export function childEnv(base: NodeJS.ProcessEnv, vars: [string, string][]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [k, v] of vars) {
    const prev = base[k];
    // The app's own JAVA_TOOL_OPTIONS come after ours, so its -D settings win.
    env[k] = k === 'JAVA_TOOL_OPTIONS' && prev !== undefined && prev.trim() !== '' ? `${v} ${prev}` : v;
  }
  return env;
}

export async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const command = dash === -1 ? [] : argv.slice(dash + 1);
  if (own.includes('-h') || own.includes('--help')) {
    process.stdout.write(`${USAGE}\nRuns CMD with the environment \`dreammesh env\` prints (see docs/forward-proxy.md).\n`);
    return 0;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: own, options: { mode: { type: 'string', short: 'm' }, config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`dreammesh exec: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (command.length === 0) {
    process.stderr.write(`dreammesh exec: no command given after --\n${USAGE}\n`);
    return 2;
  }
  let vars: [string, string][];
  try {
    const a = await parseEnvArgs(values);
    vars = meshEnv(a.config, a.mode);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`dreammesh exec: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`dreammesh exec: ${isMeshError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
  return run(command[0]!, command.slice(1), childEnv(process.env, vars));
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env });
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const sig of FORWARDED) handlers.set(sig, () => child.kill(sig));
    for (const sig of ABSORBED) handlers.set(sig, () => {});
    for (const [sig, h] of handlers) process.on(sig, h);
    const cleanup = (): void => {
      for (const [sig, h] of handlers) process.off(sig, h);
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      process.stderr.write(`dreammesh exec: cannot run "${cmd}": ${e.code ?? e.message}\n`);
      resolve(e.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      cleanup();
      if (signal !== null) resolve(128 + (constants.signals[signal] ?? 0));
      else resolve(code ?? 1);
    });
  });
}
