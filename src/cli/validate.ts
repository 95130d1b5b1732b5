// `dreammesh validate FILE`: the same parse + schema path as `run` and hot reloads, and the
// optional packages the config needs.
import { loadConfigFile } from '../config/load.js';
import { isMeshError } from '../core/errors.js';
import { assertOptionalInstalled } from '../core/optional-dependency.js';

export async function main(argv: string[]): Promise<number> {
  const file = argv[0];
  if (file === undefined || argv.length > 1) {
    process.stderr.write('usage: dreammesh validate FILE\n');
    return 2;
  }
  try {
    const config = await loadConfigFile(file);
    // `run` would refuse this config on this install, so validation does too.
    if (config.registry.etcd !== undefined) assertOptionalInstalled('etcd3', 'registry.etcd');
    const services = Object.keys(config.services).length;
    process.stdout.write(`${file}: valid (${services} inline service${services === 1 ? '' : 's'})\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`${file}: ${isMeshError(e) ? e.message : String(e)}\n`);
    return 1;
  }
}
