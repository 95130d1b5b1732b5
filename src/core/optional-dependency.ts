// Packages that only one feature needs (etcd3 for the etcd registry, vega/vega-lite for bench
// charts, undici for the app client and the bench load generator) are optionalDependencies,
// so a sidecar can be installed with `npm install --omit=optional`. They are loaded here, on
// first use, and a missing one becomes MESH_ERR_OPTIONAL_DEPENDENCY naming the install command.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { MeshError } from './errors.js';

const require = createRequire(import.meta.url);

/** The version range package.json asks for, so the install command matches this release. */
function declaredRange(pkg: string): string | undefined {
  try {
    // dist/src/core/ in a build or an install; package.json sits three levels up.
    const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as Record<string, Record<string, string> | undefined>;
    return manifest.optionalDependencies?.[pkg] ?? manifest.dependencies?.[pkg];
  } catch {
    return undefined;
  }
}

export function optionalDependencyError(pkg: string, feature: string, cause?: unknown): MeshError {
  const range = declaredRange(pkg);
  const spec = range === undefined ? pkg : `${pkg}@${range}`;
  return new MeshError('MESH_ERR_OPTIONAL_DEPENDENCY', `${feature} needs the optional package ${pkg}, which is not installed; install it with: npm install ${spec}`, {
    cause,
    details: { package: pkg, install: `npm install ${spec}` },
  });
}

/** Is `e` the loader saying that `pkg` itself (not something inside it) cannot be found? */
function isMissing(e: unknown, pkg: string): boolean {
  const err = e as NodeJS.ErrnoException;
  if (err.code !== 'MODULE_NOT_FOUND' && err.code !== 'ERR_MODULE_NOT_FOUND') return false;
  return typeof err.message === 'string' && (err.message.includes(`'${pkg}'`) || err.message.includes(`'${pkg}/`));
}

/** Throws unless `pkg` can be found, without loading it (for checks such as `dreammesh validate`). */
export function assertOptionalInstalled(pkg: string, feature: string): void {
  try {
    require.resolve(pkg);
  } catch (e) {
    if (isMissing(e, pkg)) throw optionalDependencyError(pkg, feature, e);
    throw e;
  }
}

/** Loads a CommonJS optional package synchronously. */
export function requireOptional<T>(pkg: string, feature: string): T {
  try {
    return require(pkg) as T;
  } catch (e) {
    if (isMissing(e, pkg)) throw optionalDependencyError(pkg, feature, e);
    throw e;
  }
}

/** Loads an optional package (ES module or CommonJS) with import(). */
export async function importOptional<T>(pkg: string, feature: string): Promise<T> {
  try {
    return (await import(pkg)) as T;
  } catch (e) {
    if (isMissing(e, pkg)) throw optionalDependencyError(pkg, feature, e);
    throw e;
  }
}
