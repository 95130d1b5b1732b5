// Which DNS names are mesh names: a service of the registry, alone or followed by `mesh` or
// one of config.domainSuffixes ("users", "users.mesh", "USERS.svc.cluster.local."). Case does
// not matter and a trailing dot is allowed. A name whose service is not in the registry is not
// a mesh name: it is forwarded like any other.

/** Lower-cased service name → the registry's spelling. */
export type ServiceNames = ReadonlyMap<string, string>;

export function serviceNames(services: Iterable<string>): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of services) m.set(s.toLowerCase(), s);
  return m;
}

export function meshSuffixes(domainSuffixes: readonly string[]): string[] {
  const all = new Set(['mesh', ...domainSuffixes.map((s) => s.toLowerCase().replace(/^\.+|\.+$/g, ''))]);
  all.delete('');
  // Longest first, so "svc.cluster.local" wins over a shorter suffix that also matches.
  return [...all].sort((a, b) => b.length - a.length);
}

/** The service `qname` names, or undefined. */
export function meshServiceFor(qname: string, services: ServiceNames, suffixes: readonly string[]): string | undefined {
  const name = qname.toLowerCase().replace(/\.$/, '');
  if (name.length === 0) return undefined;
  const direct = services.get(name);
  if (direct !== undefined) return direct;
  for (const suffix of suffixes) {
    if (name.length > suffix.length + 1 && name.endsWith(suffix) && name[name.length - suffix.length - 1] === '.') {
      const s = services.get(name.slice(0, name.length - suffix.length - 1));
      if (s !== undefined) return s;
    }
  }
  return undefined;
}
