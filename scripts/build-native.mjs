// Builds the original-destination addon. Transparent mode needs it; the other modes do not,
// so a failed build is reported and install carries on (transparent mode then refuses to start
// with MESH_ERR_NATIVE_MISSING).
//
// Offline-friendly: when the running node ships its own headers (include/node/node_api.h next
// to the binary, as Debian/NodeSource/official tarballs do), node-gyp is pointed at them with
// --nodedir, so no header download is attempted.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (!existsSync(join(root, 'native/binding.gyp'))) process.exit(0);
const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  console.warn('dreammesh: node-gyp not installed yet; native addon not built (transparent mode unavailable)');
  process.exit(0);
}
const args = [gyp, 'rebuild', '--directory', 'native', '--loglevel', 'warn'];
for (const dir of [process.env.DREAMMESH_NODEDIR, resolve(dirname(process.execPath), '..')]) {
  if (dir && existsSync(join(dir, 'include/node/node_api.h')) && existsSync(join(dir, 'include/node/common.gypi'))) {
    args.push(`--nodedir=${dir}`);
    break;
  }
}
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (r.status !== 0) {
  console.warn('dreammesh: native addon build failed; transparent mode will be unavailable');
}
