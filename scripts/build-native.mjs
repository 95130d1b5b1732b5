// Builds the original-destination addon. Transparent mode needs it; the other modes do not,
// so a failed build is reported and install carries on (transparent mode then refuses to start
// with MESH_ERR_NATIVE_MISSING).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

if (!existsSync(new URL('../native/binding.gyp', import.meta.url))) process.exit(0);
const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  console.warn('dreammesh: node-gyp not installed yet; native addon not built (transparent mode unavailable)');
  process.exit(0);
}
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--directory', 'native'], { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('dreammesh: native addon build failed; transparent mode will be unavailable');
}
