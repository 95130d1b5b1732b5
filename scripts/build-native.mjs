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

// node-gyp is not a dependency (it is ~3 MB with its own tree): npm runs install scripts with
// npm_config_node_gyp pointing at the node-gyp it bundles. A development checkout has it as a
// devDependency; run by hand, the copy bundled with the npm next to this node is used.
function findNodeGyp() {
  const candidates = [];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally: fine, see below
  }
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) candidates.push(resolve(dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'));
  candidates.push(resolve(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  return candidates.find((c) => existsSync(c));
}
const gyp = findNodeGyp();
if (gyp === undefined) {
  console.warn('dreammesh: node-gyp not found (neither installed nor bundled with npm); native addon not built (transparent mode unavailable)');
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
