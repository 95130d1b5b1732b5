// Policy routing for inboundMode tproxy: packets the divert chain marked are looked up in a
// table of their own whose only route is "local default dev lo", so the kernel delivers them
// to the transparent inbound listener whatever their destination address:
//   ip rule add fwmark M lookup T
//   ip route add local 0.0.0.0/0 dev lo table T      (and -6 with ::/0 when ipv6 is on)
// Steps are planned from what the kernel holds now: only missing entries are added and only
// entries of ours that are no longer wanted are deleted, so a repeated install changes nothing.
import { requireBinary, run, which } from './backend.js';

export interface Tproxy {
  readonly mark: number;
  readonly table: number;
}

interface RoutingStep {
  readonly command: string;
  readonly input: string;
}

type Family = 4 | 6;
type Entry = { kind: 'rule' | 'route'; family: Family; mark: number; table: number };

const DEFAULT_ROUTE = { 4: '0.0.0.0/0', 6: '::/0' } as const;

function ipBin(): string {
  return which('ip') ?? requireBinary('ip');
}

function present(e: Entry): boolean {
  if (which('ip') === null) return false;
  if (e.kind === 'rule') {
    const r = run(ipBin(), [`-${e.family}`, 'rule', 'show']);
    return r.status === 0 && new RegExp(`fwmark 0x${e.mark.toString(16)} lookup ${e.table}\\b`).test(r.stdout);
  }
  const r = run(ipBin(), [`-${e.family}`, 'route', 'show', 'table', String(e.table)]);
  return r.status === 0 && /^local default dev lo\b/m.test(r.stdout);
}

function entries(t: Tproxy, families: readonly Family[]): Entry[] {
  return families.flatMap((family) => [
    { kind: 'rule' as const, family, mark: t.mark, table: t.table },
    { kind: 'route' as const, family, mark: t.mark, table: t.table },
  ]);
}

const same = (a: Entry, b: Entry): boolean => a.kind === b.kind && a.family === b.family && a.table === b.table && (a.kind === 'route' || a.mark === b.mark);

function command(e: Entry, verb: 'add' | 'del'): RoutingStep {
  const args = e.kind === 'rule' ? `rule ${verb} fwmark ${e.mark} lookup ${e.table}` : `route ${verb} local ${DEFAULT_ROUTE[e.family]} dev lo table ${e.table}`;
  return { command: `ip -${e.family} ${args}`, input: '' };
}

/** Steps from the installed routing (`old`, from the table's stamp) to the wanted one. */
export function routingSteps(old: Tproxy | null, want: { tproxy: Tproxy; ipv6: boolean } | null): RoutingStep[] {
  const wanted = want === null ? [] : entries(want.tproxy, want.ipv6 ? [4, 6] : [4]);
  const stale = old === null ? [] : entries(old, [4, 6]).filter((e) => !wanted.some((w) => same(w, e)));
  const steps: RoutingStep[] = [];
  // Routes before rules on the way out: a marked packet never meets a rule without its table.
  for (const e of [...stale].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'rule' ? -1 : 1))) if (present(e)) steps.push(command(e, 'del'));
  if (wanted.length > 0) requireBinary('ip');
  for (const e of [...wanted].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'route' ? -1 : 1))) if (!present(e)) steps.push(command(e, 'add'));
  return steps;
}

/** What is missing from the kernel for `t` (for `redirect show`). */
export function routingDifferences(t: Tproxy, ipv6: boolean): string[] {
  return entries(t, ipv6 ? [4, 6] : [4])
    .filter((e) => !present(e))
    .map((e) => `missing ${command(e, 'add').command.replace(' add ', ' ')}`);
}
