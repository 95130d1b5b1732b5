#!/usr/bin/env -S node --max-semi-space-size=4
// (The flag caps V8's young generation at 4 MiB per semi-space: the HTTP engine allocates
// little per request, so a small young generation costs no throughput and keeps a sidecar's
// memory near its idle size under load. `node dist/src/cli/main.js` runs without it.)
// `dreammesh <command> [args]`: each command is one module in this folder exporting
// `main(argv): Promise<number>` (the exit code), loaded only when used so that, say,
// `dreammesh env` never pays for the proxy's dependencies.
import { pathToFileURL } from 'node:url';

const COMMANDS: Record<string, string> = {
  run: 'start the sidecar: dreammesh run --config mesh.yaml',
  validate: 'check a config file: dreammesh validate mesh.yaml',
  schema: 'print the config JSON Schema (for editors)',
  quickstart: 'start a sidecar with two demo services and print curl lines to try [--base-port N]',
  env: 'print the environment an app needs: dreammesh env --mode explicit|proxy',
  exec: 'run a command inside the mesh: dreammesh exec --mode proxy -- CMD ARGS...',
  redirect: 'transparent capture rules: dreammesh redirect install|uninstall|show [--dry-run]',
  explain: 'where would a connection go: dreammesh explain HOST:PORT',
  services: 'registry operations: dreammesh services list|get|put|rm',
  bench: 'measure each mode side by side: dreammesh bench [--quick]',
  ca: 'a CA for mTLS: dreammesh ca init --dir DIR [--trust-domain T]',
  cert: 'a workload certificate: dreammesh cert issue --ca DIR --service NAME --out DIR [--ttl 24h]',
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return ['usage: dreammesh <command> [options]', '', ...Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(width)}  ${d}`)].join('\n');
}

export async function dispatch(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(usage() + '\n');
    return cmd === undefined ? 2 : 0;
  }
  if (!Object.hasOwn(COMMANDS, cmd)) {
    process.stderr.write(`dreammesh: unknown command "${cmd}"\n${usage()}\n`);
    return 2;
  }
  let mod: { main?: (argv: string[]) => Promise<number> };
  try {
    mod = (await import(`./${cmd}.js`)) as typeof mod;
  } catch (e) {
    process.stderr.write(`dreammesh: command "${cmd}" is not available in this build (${(e as Error).message})\n`);
    return 2;
  }
  if (typeof mod.main !== 'function') {
    process.stderr.write(`dreammesh: command "${cmd}" has no entry point\n`);
    return 2;
  }
  return mod.main(rest);
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly || process.argv[1]?.endsWith('/dreammesh')) {
  // `dreammesh schema | head` closes the pipe early: that is the reader's choice, not a crash.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  dispatch(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      const err = e as { code?: string; message?: string };
      process.stderr.write(`dreammesh: ${err.code ? `${err.code}: ` : ''}${err.message ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
