// What `dreammesh run` would trip over at start, checked without starting: files the config
// names are readable (and the registry file valid), unix-socket directories exist, the native
// addon is there when transparent mode is on, the optional package etcd3 is installed when etcd
// is configured, capture settings are complete. `validate` reports all of it, including what it
// could not check (ports, etcd); `run` checks it before binding anything, so a bad start is one
// clear error. The mtls files are checked whole (tls/identity-preflight.ts).
import { access, readFile, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname } from 'node:path';
import type { MeshConfig } from './schema.js';
import { MeshError, isMeshError, type ErrorCode } from '../core/errors.js';
import { parseListenAddress } from '../core/address.js';
import { canonicalHost, isLoopback } from '../core/canonical-address.js';
import { assertOptionalInstalled } from '../core/optional-dependency.js';
import { parseServicesFile } from '../registry/file-registry.js';
import { originalDstAvailable, originalDstLoadError } from '../steering/original-dst.js';
import { redirectSpec } from '../steering/rules/redirect-spec.js';
import { dnsPreflight } from '../dns/dns-preflight.js';
import { socketOptionsAvailable } from '../steering/socket-options.js';
import { checkIdentity } from '../tls/identity-preflight.js';

export interface Problem {
  readonly code: ErrorCode;
  readonly message: string;
}

export interface PreflightReport {
  /** What would stop `run`. */
  readonly problems: readonly Problem[];
  /** What was checked and found fine, for people. */
  readonly checked: readonly string[];
  /** What only a real start can tell. */
  readonly unchecked: readonly string[];
  /** Valid, but probably not what was meant (printed; does not stop `run`). */
  readonly warnings: readonly string[];
}

const errno = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);

/** The nearest directory that exists on the way up from `path` (pino creates the rest). */
async function existingAncestor(path: string): Promise<string> {
  let dir = dirname(path);
  for (;;) {
    const st = await stat(dir).catch(() => undefined);
    if (st?.isDirectory()) return dir;
    const up = dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}

export async function preflight(config: MeshConfig): Promise<PreflightReport> {
  const problems: Problem[] = [];
  const checked: string[] = [];
  const unchecked: string[] = [];
  const warnings: string[] = [];
  const invalid = (message: string): void => void problems.push({ code: 'MESH_ERR_CONFIG_INVALID', message });

  const file = config.registry.file;
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((e: unknown) => invalid(`registry.file: cannot read ${file}: ${errno(e)}`));
    if (typeof text === 'string') {
      try {
        const n = parseServicesFile(text, file).size;
        checked.push(`registry.file ${file} (${n} service${n === 1 ? '' : 's'})`);
      } catch (e) {
        invalid(`registry.file: ${isMeshError(e) ? e.message : String(e)}`);
      }
    }
  }

  const etcd = config.registry.etcd;
  if (etcd !== undefined) {
    for (const [key, path] of Object.entries(etcd.tls ?? {})) {
      if (path !== undefined)
        await access(path, constants.R_OK).then(
          () => checked.push(`registry.etcd.tls.${key} ${path}`),
          (e: unknown) => invalid(`registry.etcd.tls.${key}: cannot read ${path}: ${errno(e)}`),
        );
    }
    if (etcd.tls !== undefined && etcd.tls.caFile === undefined) invalid('registry.etcd.tls.caFile: required when tls is set');
    if (config.service !== undefined && config.instance?.address === undefined && config.listeners.inbound?.startsWith('unix:') === true) {
      invalid('instance.address: required when listeners.inbound is a unix socket (peers need host:port)');
    }
    try {
      assertOptionalInstalled('etcd3', 'registry.etcd');
      checked.push('registry.etcd: the etcd3 package is installed');
    } catch (e) {
      if (!isMeshError(e)) throw e;
      problems.push({ code: e.code, message: e.message });
    }
    unchecked.push(`etcd at ${etcd.endpoints.join(', ')} is reachable (validate does not connect)`);
  }

  for (const [name, address] of Object.entries(config.listeners)) {
    const a = parseListenAddress(address);
    if (a?.kind !== 'unix') continue;
    const dir = dirname(a.path);
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) invalid(`listeners.${name}: cannot listen on ${address}: directory ${dir} does not exist`);
  }
  unchecked.push(
    `the listeners can bind ${Object.values(config.listeners)
      .filter((v) => v !== undefined)
      .join(', ')} (validate binds nothing)`,
  );

  if (config.accessLog.enabled && config.accessLog.path !== undefined) {
    const path = config.accessLog.path;
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    const target = exists ? path : await existingAncestor(path);
    await access(target, constants.W_OK).then(
      () => checked.push(`accessLog.path ${path} is writable`),
      (e: unknown) => invalid(`accessLog.path: cannot write ${path}: ${errno(e)} on ${target}`),
    );
  }

  if (config.transparent.enabled) {
    if (originalDstAvailable()) checked.push('native original-destination addon (transparent.enabled)');
    else {
      problems.push({
        code: 'MESH_ERR_NATIVE_MISSING',
        message: `transparent.enabled is true but the native original-destination addon is not available (${originalDstLoadError()}; run \`npm rebuild dreammesh\` (needs g++ and python3) or set DREAMMESH_NATIVE_ADDON)`,
      });
    }
  }
  const r = config.transparent.redirect;
  const needsOptions = [r.proxyMark !== undefined ? 'transparent.redirect.proxyMark' : '', r.inboundMode === 'tproxy' ? 'transparent.redirect.inboundMode: tproxy' : ''].filter((x) => x !== '');
  if (needsOptions.length > 0) {
    if (socketOptionsAvailable()) unchecked.push(`${needsOptions.join(' and ')}: the native socket options are built; setting them needs CAP_NET_ADMIN (checked at start)`);
    else
      problems.push({
        code: 'MESH_ERR_NATIVE_MISSING',
        message: `${needsOptions.join(' and ')} ${needsOptions.length > 1 ? 'need' : 'needs'} the native addon's socket options, which are not available (${originalDstLoadError() || 'rebuild the addon'})`,
      });
  }
  if (config.transparent.failOpen) {
    if (!config.transparent.enabled) invalid('transparent.failOpen needs transparent.enabled: true (captured connections would not be recognised)');
    try {
      redirectSpec(config);
      unchecked.push('the capture rules can be installed (transparent.failOpen; needs CAP_NET_ADMIN, nothing applied)');
    } catch (e) {
      const err = isMeshError(e) ? e : new MeshError('MESH_ERR_REDIRECT_INVALID', String(e));
      problems.push({ code: err.code, message: err.message });
    }
  }
  dnsPreflight(config, { problems, checked, warnings });
  const identity = checkIdentity(config);
  for (const p of identity.problems) problems.push({ code: 'MESH_ERR_IDENTITY_INVALID', message: p });
  checked.push(...identity.checked);
  warnings.push(...identity.warnings);
  const inbound = config.listeners.inbound === undefined ? null : parseListenAddress(config.listeners.inbound);
  if (inbound?.kind === 'tcp' && !isLoopback(canonicalHost(inbound.host.toLowerCase()) ?? inbound.host) && config.mtls.mode !== 'strict') {
    // Without strict mTLS, whoever reaches the inbound listener reaches the app, unauthenticated.
    warnings.push(
      `listeners.inbound: ${config.listeners.inbound} is reachable from other hosts and accepts unauthenticated clients (mtls.mode is ${config.mtls.mode}): anyone who can connect reaches the app at ${config.app ?? '?'}; bind 127.0.0.1, or set mtls.mode: strict (docs/mtls.md)`,
    );
  }
  return { problems, checked, unchecked, warnings };
}
