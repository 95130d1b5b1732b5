// Rule backends: which binaries each one runs, how to find them on PATH, and `auto` detection
// ("use where DreamMesh rules already are, else what the host already uses").
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MeshError } from '../../core/errors.js';
import type { BackendChoice, BackendName } from './redirect-spec.js';
import { parseNatSave } from './iptables.js';
import { NFT_FAMILY, NFT_TABLE } from './nftables.js';

export interface IptablesBinaries {
  readonly save: string;
  readonly restore: string;
}

/** Binary names of an iptables-flavoured backend for one family. */
export function iptablesBinaries(backend: Exclude<BackendName, 'nftables'>, family: 4 | 6): IptablesBinaries {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  const flavour = backend === 'iptables' ? '' : backend === 'iptables-nft' ? '-nft' : '-legacy';
  return { save: `${base}${flavour}-save`, restore: `${base}${flavour}-restore` };
}

/** Full path of a binary on PATH (only PATH: a PATH without it means "not installed"). */
export function which(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export function requireBinary(name: string): string {
  const p = which(name);
  if (p === null) {
    const pkg = name === 'nft' ? 'nftables' : 'iptables';
    throw new MeshError('MESH_ERR_REDIRECT_FAILED', `${name} not found on PATH (install the ${pkg} package, or choose another --backend)`);
  }
  return p;
}

export interface RunResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(bin: string, args: string[], input?: string): RunResult {
  const r = spawnSync(bin, args, { input, encoding: 'utf8', timeout: 15_000, env: process.env });
  if (r.error) return { status: -1, stdout: '', stderr: r.error.message };
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * The save output for one backend and family; callers read its nat section. Without `-t nat`
 * on purpose: iptables-legacy-save then lists only tables that exist, instead of creating the
 * nat table just by looking (which would change what "as before" means).
 */
export function readNat(backend: Exclude<BackendName, 'nftables'>, family: 4 | 6): string {
  const bin = requireBinary(iptablesBinaries(backend, family).save);
  const r = run(bin, []);
  if (r.status !== 0) {
    // A missing nat table is not an error: nothing is installed there.
    if (/table .*does not exist|Table does not exist|can't initialize/i.test(r.stderr)) return '';
    throw new MeshError('MESH_ERR_REDIRECT_FAILED', `${bin} -t nat failed: ${r.stderr.trim() || `exit ${r.status}`}`);
  }
  return r.stdout;
}

/** `nft list table inet dreammesh`, or null when the table does not exist. */
export function readNftTable(): string | null {
  const r = run(requireBinary('nft'), ['list', 'table', NFT_FAMILY, NFT_TABLE]);
  return r.status === 0 ? r.stdout : null;
}

/** True when this iptables flavour stores its rules in nf_tables (base chains made on demand). */
export function isNftFlavour(backend: Exclude<BackendName, 'nftables'>): boolean {
  if (backend === 'iptables-nft') return true;
  if (backend === 'iptables-legacy') return false;
  const bin = which('iptables');
  return bin !== null && run(bin, ['-V']).stdout.includes('nf_tables');
}

function rulesIn(save: string): number {
  return save.split('\n').filter((l) => l.startsWith('-A ')).length;
}

/** Backends (concrete) where DreamMesh rules are installed now. */
export function installedBackends(): BackendName[] {
  const found: BackendName[] = [];
  const concrete: Exclude<BackendName, 'nftables'>[] = which('iptables-nft-save') || which('iptables-legacy-save') ? ['iptables-nft', 'iptables-legacy'] : ['iptables'];
  for (const b of concrete) {
    if (which(iptablesBinaries(b, 4).save) === null) continue;
    for (const fam of [4, 6] as const) {
      if (which(iptablesBinaries(b, fam).save) === null) continue;
      const save = safe(() => readNat(b, fam), '');
      // A marker alone (a base chain we created) still counts: uninstall must clean it up.
      if ([parseNatSave(save), parseNatSave(save, 'mangle')].some((s) => s.chains.length > 0 || s.jumps.length > 0)) {
        found.push(b);
        break;
      }
    }
  }
  if (which('nft') !== null && readNftTable() !== null) found.push('nftables');
  return found;
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

const IPTABLES_NFT_TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);

/** Resolves `auto` (and checks the chosen backend's binaries exist). */
export function resolveBackend(choice: BackendChoice): BackendName {
  if (choice !== 'auto') return choice;
  const installed = installedBackends();
  if (installed.length > 0) return installed[0]!;
  const legacy = which('iptables-legacy-save') ? rulesIn(safe(() => run(which('iptables-legacy-save')!, []).stdout, '')) : 0;
  const ipnft = which('iptables-nft-save') ? rulesIn(safe(() => run(which('iptables-nft-save')!, []).stdout, '')) : 0;
  let nativeNft = 0;
  if (which('nft') !== null) {
    const tables = run(which('nft')!, ['list', 'tables'])
      .stdout.split('\n')
      .filter((l) => l.startsWith('table '));
    nativeNft = tables.filter((l) => {
      const [, fam, name] = l.trim().split(/\s+/);
      return !((fam === 'ip' || fam === 'ip6') && IPTABLES_NFT_TABLES.has(name ?? ''));
    }).length;
  }
  if (legacy > 0 && legacy >= ipnft) return 'iptables-legacy';
  if (nativeNft > 0 && ipnft === 0 && legacy === 0) return 'nftables';
  if (which('iptables-restore') !== null) return 'iptables';
  if (which('nft') !== null) return 'nftables';
  throw new MeshError('MESH_ERR_REDIRECT_FAILED', 'no rule backend found on PATH: neither iptables-restore nor nft (install iptables or nftables)');
}
