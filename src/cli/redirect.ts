// `dreammesh redirect install|uninstall|show [--dry-run]`: the transparent-capture rules.
// Settings come from the config's transparent.redirect section with flags on top; every value
// is validated before anything runs, so a typo never leaves half a rule set behind.
import { isMeshError } from '../core/errors.js';
import { install, planInstall, planUninstall, show, uninstall } from '../steering/rules/apply.js';
import { installedBackends, resolveBackend } from '../steering/rules/backend.js';
import { specHash } from '../steering/rules/redirect-spec.js';
import { verify } from './redirect-verify.js';
import { parse, REDIRECT_FLAGS_HELP, specFrom, type RedirectValues } from './redirect-flags.js';

const USAGE = `usage: dreammesh redirect install|uninstall|show|verify [options]
  --dry-run                      print the exact rules / commands instead of applying them
  --force                        install even when transparent.failOpen says the sidecar owns the rules
  --json                         show: machine-readable report
  --uid U                        verify: probe as this uid (default 65534, a captured one)
  --probe IP:PORT                verify: the address the probe connects to (default 192.0.2.1:80; never contacted when capture works)
${REDIRECT_FLAGS_HELP}`;

export async function main(argv: string[]): Promise<number> {
  let values: RedirectValues & { 'dry-run'?: boolean; force?: boolean; json?: boolean; help?: boolean; uid?: string; probe?: string };
  let positionals: string[];
  try {
    const p = parse(argv, { 'dry-run': { type: 'boolean' }, force: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, uid: { type: 'string' }, probe: { type: 'string' } });
    values = p.values;
    positionals = p.positionals;
  } catch (e) {
    process.stderr.write(`dreammesh redirect: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const [action, ...more] = positionals;
  if (action === undefined || !['install', 'uninstall', 'show', 'verify'].includes(action) || more.length > 0) {
    process.stderr.write(`dreammesh redirect: expected one of install, uninstall, show, verify\n${USAGE}\n`);
    return 2;
  }
  try {
    if (action === 'uninstall') return doUninstall(values);
    const { config, spec } = await specFrom(values);
    if (action === 'verify') {
      const hint = ['dreammesh redirect install', ...installArgs(argv)].join(' ');
      const r = await verify(config, spec, { uid: values.uid, probe: values.probe, installHint: hint });
      (r.ok ? process.stdout : process.stderr).write(`dreammesh redirect verify: ${r.message}\n`);
      return r.ok ? 0 : 1;
    }
    if (action === 'show') {
      const r = show(spec);
      if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        process.stdout.write(`backend: ${r.backend}\ninstalled: ${r.installed ? 'yes' : 'no'}\nmatches config: ${r.matches ? 'yes' : 'no'} (settings ${specHash(spec)})\n`);
        for (const d of r.differences) process.stdout.write(`  - ${d}\n`);
        if (r.listing) process.stdout.write(`\n${r.listing.trimEnd()}\n`);
      }
      return r.matches ? 0 : 1;
    }
    if (config.transparent.failOpen && !values.force && !values['dry-run']) {
      process.stderr.write(
        'dreammesh redirect: transparent.failOpen is on, so the sidecar installs these rules when it starts and removes them when it stops;\n' +
          'installing them now would capture traffic while no sidecar listens. Use --force to install anyway.\n',
      );
      return 1;
    }
    if (values['dry-run']) {
      const plan = planInstall(spec, resolveBackend(spec.backend));
      process.stdout.write(`# backend: ${plan.backend}; settings ${specHash(spec)}\n`);
      for (const s of plan.steps) process.stdout.write(`# ${s.command} <<EOF\n${s.input}${s.input.endsWith('\n') ? '' : '\n'}# EOF\n`);
      return 0;
    }
    const r = install(spec);
    process.stdout.write(`dreammesh: capture rules installed (backend ${r.backend}, settings ${r.hash})\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`dreammesh redirect ${action}: ${isMeshError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return isMeshError(e) && e.code === 'MESH_ERR_REDIRECT_INVALID' ? 2 : 1;
  }
}

function doUninstall(values: RedirectValues & { 'dry-run'?: boolean }): number {
  const choice = values.backend ?? 'auto';
  if (!['auto', 'iptables', 'iptables-nft', 'iptables-legacy', 'nftables'].includes(choice)) {
    process.stderr.write(`dreammesh redirect uninstall: MESH_ERR_REDIRECT_INVALID: --backend: "${choice}" is not a backend\n`);
    return 2;
  }
  const b = choice as Parameters<typeof uninstall>[0];
  if (values['dry-run']) {
    const backends = b === 'auto' ? installedBackends() : [b];
    for (const be of backends) for (const s of planUninstall(be)) process.stdout.write(`# ${be}: ${s.command} <<EOF\n${s.input}# EOF\n`);
    if (backends.length === 0) process.stdout.write('# nothing installed\n');
    return 0;
  }
  const r = uninstall(b);
  process.stdout.write(r.removed ? `dreammesh: capture rules removed (${r.backends.join(', ')})\n` : 'dreammesh: no capture rules were installed\n');
  return 0;
}

/** verify's own arguments dropped: what `redirect install` would take. */
function installArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'verify') continue;
    if (a === '--uid' || a === '--probe') i++;
    else if (!a.startsWith('--uid=') && !a.startsWith('--probe=')) out.push(a);
  }
  return out;
}
