// `dreammesh run --config mesh.yaml`: start the sidecar. SIGTERM and SIGINT drain (requests
// and tunnels, up to drainTimeoutMs), remove fail-open capture rules and exit 0; a second one
// exits at once. SIGHUP reloads the config file (so does a change to it with watchConfig).
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { preflight } from '../config/preflight.js';
import { Sidecar } from '../sidecar.js';
import { describeBound } from '../listeners/listen.js';
import { isMeshError } from '../core/errors.js';
import { ConfigReloader } from '../config/config-reloader.js';

const ignore = (): void => {};

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`dreammesh run: ${(e as Error).message}\nusage: dreammesh run --config mesh.yaml\n`);
    return 2;
  }
  const file = values.config ?? process.env.DREAMMESH_CONFIG;
  if (file === undefined) {
    process.stderr.write('dreammesh run: --config FILE is required (or set DREAMMESH_CONFIG)\n');
    return 2;
  }
  let sidecar: Sidecar;
  try {
    const config = await loadConfigFile(file);
    // What `validate` checks, before anything binds: a bad start is one clear error.
    const { problems, warnings } = await preflight(config);
    if (problems.length > 0) {
      for (const p of problems) process.stderr.write(`dreammesh run: ${p.code}: ${p.message}\n`);
      return 1;
    }
    for (const w of warnings) process.stderr.write(`dreammesh run: warning: ${w}\n`);
    sidecar = new Sidecar(config, { source: file });
    // Until the handlers below are in place, SIGHUP would end the process (its default).
    process.on('SIGHUP', ignore);
    const b = await sidecar.start();
    const inbound = b.inbound === undefined ? 'off (no app)' : describeBound(b.inbound);
    process.stderr.write(`dreammesh: outbound ${describeBound(b.outbound)}  inbound ${inbound}  admin ${describeBound(b.admin)}\n`);
  } catch (e) {
    process.stderr.write(`dreammesh run: ${isMeshError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
  const reloader = new ConfigReloader(sidecar, file);
  if (sidecar.config.watchConfig) reloader.watch();
  process.off('SIGHUP', ignore);
  process.on('SIGHUP', () => reloader.request('SIGHUP'));
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`dreammesh: second ${sig}, exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      reloader.close();
      sidecar.stop().then(
        () => resolve(0),
        (e: unknown) => {
          process.stderr.write(`dreammesh: error while stopping: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
