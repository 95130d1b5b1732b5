// Installs, removes and inspects DreamMesh's capture rules with the chosen backend. Each
// install is one atomic transaction per address family (iptables-restore --noflush, or one
// nft -f); when IPv6 fails after IPv4 went in, IPv4 is taken out again, so nothing stays
// half-installed. Only DREAMMESH_* chains / the inet dreammesh table are ever changed.
import { MeshError } from '../../core/errors.js';
import type { BackendName, RedirectSpec } from './redirect-spec.js';
import { specHash } from './redirect-spec.js';
import { iptablesBinaries, installedBackends, isNftFlavour, readNat, readNftTable, requireBinary, resolveBackend, run, which } from './backend.js';
import type { IptablesTable, NatState } from './iptables.js';
import { BASE_CHAINS, MARK_TABLE, iptablesDiff, iptablesInstallScript, iptablesInstalledTproxy, iptablesUninstallScript, isMarker, markFor, parseNatSave } from './iptables.js';
import { NFT_DNS_CHAIN, nftInstallScript, nftInstalledHash, nftInstalledTproxy, nftUninstallScript } from './nftables.js';
import type { Tproxy } from './tproxy-routing.js';
import { routingDifferences, routingSteps } from './tproxy-routing.js';

export interface Step {
  /** e.g. "iptables-restore --noflush" or "nft -f -". */
  readonly command: string;
  readonly input: string;
}

export interface Plan {
  readonly backend: BackendName;
  readonly steps: Step[];
}

/** The exact commands and inputs an install would run now (used by --dry-run and install). */
export function planInstall(spec: RedirectSpec, backend: BackendName = resolveBackend(spec.backend)): Plan {
  if (backend === 'nftables') {
    requireBinary('nft');
    const cur = readNftTable();
    const old = cur === null ? null : nftInstalledTproxy(cur);
    const routing = routingSteps(old, spec.tproxy === undefined ? null : { tproxy: spec.tproxy, ipv6: spec.ipv6 });
    return { backend, steps: [{ command: 'nft -f -', input: nftInstallScript(spec) }, ...routing] };
  }
  const steps: Step[] = [];
  const cleanups: Step[] = [];
  let old: Tproxy | null = null;
  for (const fam of [4, 6] as const) {
    const bins = iptablesBinaries(backend, fam);
    if (fam === 6 && !spec.ipv6) {
      // Leftovers of an earlier IPv6 install would no longer match the config: remove them.
      if (which(bins.save) === null) continue;
      const save = readNat(backend, 6);
      const mangle = parseNatSave(save, 'mangle');
      old ??= iptablesInstalledTproxy(mangle);
      const un = [iptablesUninstallScript(parseNatSave(save)), iptablesUninstallScript(mangle, 'mangle')].filter((x) => x !== null);
      if (un.length > 0) steps.push({ command: `${bins.restore} --noflush`, input: un.join('') });
      cleanups.push(...createdCleanup(mangle.chains.filter(isMarker), fam, 'mangle'));
      continue;
    }
    requireBinary(bins.restore);
    const nft = isNftFlavour(backend);
    const save = readNat(backend, fam);
    const mangle = parseNatSave(save, 'mangle');
    old ??= iptablesInstalledTproxy(mangle);
    const natCreated = nft ? nftTableState(fam, 'nat') : undefined;
    let input = iptablesInstallScript(spec, fam, parseNatSave(save), natCreated ? { markCreated: natCreated } : {});
    if (spec.tproxy !== undefined) {
      const mangleCreated = nft ? nftTableState(fam, 'mangle') : undefined;
      input += iptablesInstallScript(spec, fam, mangle, mangleCreated ? { markCreated: mangleCreated } : {}, 'mangle');
    } else {
      // Back from tproxy to redirect: the mangle chains (and what they created) go.
      input += iptablesUninstallScript(mangle, 'mangle') ?? '';
      cleanups.push(...createdCleanup(mangle.chains.filter(isMarker), fam, 'mangle'));
    }
    steps.push({ command: `${bins.restore} --noflush`, input });
  }
  const routing = routingSteps(old, spec.tproxy === undefined ? null : { tproxy: spec.tproxy, ipv6: spec.ipv6 });
  return { backend, steps: [...steps, ...cleanups, ...routing] };
}

function hasOurs(st: NatState): boolean {
  return st.chains.length > 0 || st.jumps.length > 0;
}

function runStep(s: Step): void {
  const [bin, ...args] = s.command.split(' ');
  const r = run(requireBinary(bin!), args, s.input);
  if (r.status !== 0) throw new MeshError('MESH_ERR_REDIRECT_FAILED', `${s.command} failed: ${r.stderr.trim() || `exit ${r.status}`}`);
}

export interface InstallResult {
  readonly backend: BackendName;
  readonly hash: string;
}

export function install(spec: RedirectSpec): InstallResult {
  const first = planInstall(spec);
  // Rules of another backend would run alongside the new ones: take them out first (and plan
  // again: their uninstall may have removed routing the first plan counted as present).
  let removed = false;
  for (const other of installedBackends()) {
    if (sameKernelState(other, first.backend)) continue;
    uninstallFrom(other);
    removed = true;
  }
  const plan = removed ? planInstall(spec, first.backend) : first;
  const done: Step[] = [];
  try {
    for (const s of plan.steps) {
      runStep(s);
      done.push(s);
    }
  } catch (e) {
    if (done.length > 0) {
      try {
        uninstallFrom(plan.backend);
      } catch {
        /* report the original failure */
      }
    }
    throw e;
  }
  return { backend: plan.backend, hash: specHash(spec) };
}

function sameKernelState(a: BackendName, b: BackendName): boolean {
  if (a === b) return true;
  const pair = new Set([a, b]);
  // "iptables" is whichever flavour the iptables symlink points to.
  if (!pair.has('iptables')) return false;
  const other = a === 'iptables' ? b : a;
  const v = which('iptables') ? run(which('iptables')!, ['-V']).stdout : '';
  return (other === 'iptables-nft' && v.includes('nf_tables')) || (other === 'iptables-legacy' && v.includes('legacy'));
}

/**
 * After an iptables-nft uninstall: delete the nat base chains (and table) our install created,
 * as recorded by the marker chains, when they are still empty — so the ruleset reads exactly
 * as before. Steps are nft commands.
 */
function createdCleanup(markers: string[], family: 4 | 6, table: IptablesTable = 'nat'): Step[] {
  if (markers.length === 0 || which('nft') === null) return [];
  const fam = family === 4 ? 'ip' : 'ip6';
  const lines: string[] = [];
  const listing = run(which('nft')!, ['list', 'table', fam, table]);
  if (listing.status !== 0) return [];
  const chains = parseNftChains(listing.stdout);
  for (const b of BASE_CHAINS) {
    // Only our own jump (removed in the same uninstall) may be in it.
    const rules = (chains.get(b) ?? []).filter((r) => !/jump DREAMMESH_/.test(r));
    if (markers.includes(markFor(b)) && chains.has(b) && rules.length === 0) {
      lines.push(`delete chain ${fam} ${table} ${b}`);
      chains.delete(b);
    }
  }
  const onlyOurs = [...chains.keys()].every((c) => c.startsWith('DREAMMESH_'));
  if (markers.includes(MARK_TABLE) && onlyOurs) return [{ command: 'nft -f -', input: `delete table ${fam} ${table}\n` }];
  return lines.length > 0 ? [{ command: 'nft -f -', input: lines.join('\n') + '\n' }] : [];
}

/** Which of the nf_tables table (nat, mangle) and its chains exist (for iptables-nft); undefined without nft. */
function nftTableState(family: 4 | 6, table: IptablesTable): { table: boolean; baseChains: string[] } | undefined {
  const nft = which('nft');
  if (nft === null) return undefined;
  const r = run(nft, ['list', 'table', family === 4 ? 'ip' : 'ip6', table]);
  if (r.status !== 0) return { table: false, baseChains: [] };
  return { table: true, baseChains: [...parseNftChains(r.stdout).keys()] };
}

/** chain name → rule lines, from `nft list table` output. */
function parseNftChains(listing: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  let cur: string | null = null;
  for (const raw of listing.split('\n')) {
    const l = raw.trim();
    const c = /^chain (\S+) \{$/.exec(l);
    if (c) {
      cur = c[1]!;
      m.set(cur, []);
    } else if (l === '}') cur = null;
    else if (cur !== null && l !== '' && !l.startsWith('type ')) m.get(cur)!.push(l);
  }
  return m;
}

/** Steps that remove DreamMesh's rules from one backend (empty when nothing is installed). */
export function planUninstall(backend: BackendName): Step[] {
  if (backend === 'nftables') {
    const cur = which('nft') === null ? null : readNftTable();
    if (cur === null) return [];
    const old = nftInstalledTproxy(cur);
    return [{ command: 'nft -f -', input: nftUninstallScript() }, ...(old === null ? [] : routingSteps(old, null))];
  }
  const steps: Step[] = [];
  let old: Tproxy | null = null;
  for (const fam of [4, 6] as const) {
    const bins = iptablesBinaries(backend, fam);
    if (which(bins.save) === null) {
      if (fam === 4) requireBinary(bins.save);
      continue;
    }
    const save = readNat(backend, fam);
    const st = parseNatSave(save);
    const mangle = parseNatSave(save, 'mangle');
    old ??= iptablesInstalledTproxy(mangle);
    const un = [iptablesUninstallScript(st), iptablesUninstallScript(mangle, 'mangle')].filter((x) => x !== null);
    if (un.length > 0) steps.push({ command: `${bins.restore} --noflush`, input: un.join('') });
    steps.push(...createdCleanup(st.chains.filter(isMarker), fam), ...createdCleanup(mangle.chains.filter(isMarker), fam, 'mangle'));
  }
  return old === null ? steps : [...steps, ...routingSteps(old, null)];
}

function uninstallFrom(backend: BackendName): number {
  const steps = planUninstall(backend);
  for (const s of steps) runStep(s);
  return steps.length;
}

/** Removes DreamMesh's rules; `auto` removes them from every backend where they are. */
export function uninstall(choice: RedirectSpec['backend']): { backends: BackendName[]; removed: boolean } {
  const backends = choice === 'auto' ? installedBackends() : [choice];
  let n = 0;
  for (const b of backends) n += uninstallFrom(b);
  return { backends, removed: n > 0 };
}

export interface ShowReport {
  readonly backend: BackendName;
  readonly installed: boolean;
  readonly matches: boolean;
  readonly differences: string[];
  /** What is installed, as the backend prints it. */
  readonly listing: string;
}

export function show(spec: RedirectSpec): ShowReport {
  const found = installedBackends();
  const backend = spec.backend === 'auto' ? (found[0] ?? resolveBackend('auto')) : spec.backend;
  if (backend === 'nftables') {
    const listing = readNftTable();
    if (listing === null) return { backend, installed: false, matches: false, differences: ['table inet dreammesh is not installed'], listing: '' };
    const h = nftInstalledHash(listing);
    const differences = h === specHash(spec) ? [] : [`installed rules were generated from different settings (stamp ${h ?? 'missing'}, config ${specHash(spec)})`];
    for (const c of ['output', 'prerouting', ...(spec.dns !== undefined ? [NFT_DNS_CHAIN] : [])]) if (!new RegExp(`^\\s*chain ${c} \\{`, 'm').test(listing)) differences.push(`missing chain ${c}`);
    if (spec.tproxy !== undefined) differences.push(...routingDifferences(spec.tproxy, spec.ipv6));
    return { backend, installed: true, matches: differences.length === 0, differences, listing };
  }
  const differences: string[] = [];
  const listing: string[] = [];
  let installed = false;
  for (const fam of [4, 6] as const) {
    if (fam === 6 && which(iptablesBinaries(backend, 6).save) === null) {
      if (spec.ipv6) differences.push('ip6tables not available');
      continue;
    }
    const save = readNat(backend, fam);
    const st = parseNatSave(save);
    const mangle = parseNatSave(save, 'mangle');
    const present = hasOurs(st) || hasOurs(mangle);
    installed ||= present;
    const tag = fam === 4 ? 'ipv4' : 'ipv6';
    listing.push(...[...st.jumps, ...st.rules].map((l) => `${tag}: ${l}`), ...[...mangle.jumps, ...mangle.rules].map((l) => `${tag} mangle: ${l}`));
    if (fam === 6 && !spec.ipv6) {
      if (present) differences.push('ipv6: rules installed but ipv6 capture is off in the config');
      continue;
    }
    differences.push(...iptablesDiff(spec, fam, st).map((d) => `${tag}: ${d}`));
    if (spec.tproxy !== undefined) differences.push(...iptablesDiff(spec, fam, mangle, 'mangle').map((d) => `${tag} mangle: ${d}`));
    else if (hasOurs(mangle)) differences.push(`${tag} mangle: TPROXY rules installed but inboundMode is redirect in the config`);
  }
  if (installed && spec.tproxy !== undefined) differences.push(...routingDifferences(spec.tproxy, spec.ipv6));
  return { backend, installed, matches: installed && differences.length === 0, differences: installed ? differences : ['no DREAMMESH_* chains installed'], listing: listing.join('\n') };
}
