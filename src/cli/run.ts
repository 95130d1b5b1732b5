// `dreammesh run --config mesh.yaml`: start the sidecar; SIGTERM/SIGINT drain and exit 0.
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { preflight } from '../config/preflight.js';
import { Sidecar } from '../sidecar.js';
import { describeBound } from '../listeners/listen.js';
import { isMeshError } from '../core/errors.js';

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
    const { problems } = await preflight(config);
    if (problems.length > 0) {
      for (const p of problems) process.stderr.write(`dreammesh run: ${p.code}: ${p.message}\n`);
      return 1;
    }
    sidecar = new Sidecar(config);
    const b = await sidecar.start();
    process.stderr.write(`dreammesh: outbound ${describeBound(b.outbound)}  inbound ${describeBound(b.inbound)}  admin ${describeBound(b.admin)}\n`);
  } catch (e) {
    process.stderr.write(`dreammesh run: ${isMeshError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`dreammesh: second ${sig}, exiting now\n`);
        process.exit(1);
      }
      stopping = true;
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
