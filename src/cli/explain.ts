// `dreammesh explain HOST:PORT [--uid U]`: which path a connection would take, and why —
// bypassed by a capture exclusion, or captured and then: mesh service (route, cluster),
// egress allowed, egress denied, or opaque TCP. Reads the config, the configured capture
// settings (not the kernel: `dreammesh redirect show` says whether those are installed), the
// live registry (etcd included, its snapshot cache when etcd does not answer) and the DNS
// virtual IP map (explain-registry.ts).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isMeshError } from '../core/errors.js';
import { parseHostPort, formatHostPort } from '../core/address.js';
import type { MeshConfig } from '../config/schema.js';
import { meshServiceFor, meshSuffixes, serviceNames } from '../dns/names.js';
import { explainView } from './explain-registry.js';
import { decideEgress } from '../routing/egress.js';
import { redirectSpec, type RedirectSpec } from '../steering/rules/redirect-spec.js';
import { evaluateOutbound, type CaptureVerdict } from '../steering/rules/evaluate.js';
import { flagsFrom, loadConfigFor, parse, REDIRECT_FLAGS_HELP, type RedirectValues } from './redirect-flags.js';

const USAGE = `usage: dreammesh explain HOST:PORT [--uid U] [--gid G] [--json] [options]
  --uid U / --gid G              the connecting process (default: an application uid)
${REDIRECT_FLAGS_HELP}`;

export interface Explanation {
  destination: string;
  address: string;
  capture: CaptureVerdict | { captured: null; why: string };
  path: string;
  steps: string[];
}

export async function main(argv: string[]): Promise<number> {
  let values: RedirectValues & { uid?: string; gid?: string; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    const p = parse(argv, { uid: { type: 'string' }, gid: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
    values = p.values;
    positionals = p.positionals;
  } catch (e) {
    process.stderr.write(`dreammesh explain: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const target = positionals.length === 1 ? parseHostPort(positionals[0]!) : null;
  if (target === null || target.port === 0) {
    process.stderr.write(`dreammesh explain: expected one HOST:PORT (e.g. 10.0.0.5:5432 or api.example.com:443)\n${USAGE}\n`);
    return 2;
  }
  for (const k of ['uid', 'gid'] as const) {
    if (values[k] !== undefined && !/^\d{1,10}$/.test(values[k])) {
      process.stderr.write(`dreammesh explain: --${k} "${values[k]}" is not a numeric id\n`);
      return 2;
    }
  }
  try {
    const config = await loadConfigFor(values);
    let spec: RedirectSpec | null = null;
    let specError = '';
    try {
      spec = redirectSpec(config, flagsFrom(values));
    } catch (e) {
      if (!isMeshError(e) || !/--proxy-uid/.test(e.message) || Object.keys(flagsFrom(values)).length > 0) throw e;
      specError = 'no capture settings (transparent.redirect.proxyUid unset): only the sidecar path is explained';
    }
    const who = { ...(values.uid !== undefined ? { uid: Number(values.uid) } : {}), ...(values.gid !== undefined ? { gid: Number(values.gid) } : {}) };
    const ex = await explain(config, spec, specError, target.host, target.port, who);
    if (values.json) process.stdout.write(JSON.stringify(ex, null, 2) + '\n');
    else process.stdout.write(`${ex.destination}: ${ex.path}\n${ex.steps.map((s) => `  - ${s}`).join('\n')}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`dreammesh explain: ${isMeshError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return isMeshError(e) && e.code === 'MESH_ERR_REDIRECT_INVALID' ? 2 : 1;
  }
}

export async function explain(config: MeshConfig, spec: RedirectSpec | null, specError: string, host: string, port: number, who: { uid?: number; gid?: number }): Promise<Explanation> {
  const steps: string[] = [];
  const view = await explainView(config);
  steps.push(...view.notes);
  const { table, vips } = view;
  let address = host;
  const meshName = vips !== undefined && isIP(host) === 0 ? meshServiceFor(host, serviceNames(table.serviceNames()), meshSuffixes(config.domainSuffixes)) : undefined;
  if (meshName !== undefined && vips?.v4(meshName) !== undefined) {
    address = vips.v4(meshName)!;
    steps.push(`the sidecar's DNS (dns.listen ${config.dns.listen}) answers ${host} with ${address}, the virtual IP of service "${meshName}"${spec?.dns !== undefined ? " (the app's port 53 is captured to it)" : ''}`);
  } else if (isIP(host) === 0) {
    try {
      address = (await lookup(host)).address;
      steps.push(`${host} resolves to ${address} (capture rules match addresses)`);
    } catch {
      steps.push(`${host} does not resolve here; capture rules cannot be evaluated for it`);
      address = '';
    }
  }
  const destination = formatHostPort(host, port);
  let capture: Explanation['capture'];
  if (spec === null) capture = { captured: null, why: specError };
  else if (address === '') capture = { captured: null, why: 'unresolvable name' };
  else capture = evaluateOutbound(spec, address, port, who);
  if (capture.captured === null && address === '') capture = { captured: null, why: 'capture not evaluated (name does not resolve)' };
  if (capture.captured === false) {
    steps.push(`bypassed by rule "${capture.rule}": ${capture.why}`);
    steps.push('the connection goes directly to its destination; the sidecar never sees it');
    return { destination, address, capture, path: 'bypassed (not captured)', steps };
  }
  if (capture.captured === true && capture.rule === 'dns') {
    steps.push(`captured (${capture.why}) → redirected to the DNS listener port ${capture.to} (dns.listen ${config.dns.listen})`);
    steps.push('mesh names are answered with their virtual IP; other names are forwarded to dns.upstreams (or the nameservers of /etc/resolv.conf)');
    return { destination, address, capture, path: "DNS, answered by the sidecar's DNS server", steps };
  }
  if (capture.captured === true) steps.push(`captured (${capture.why}${who.uid === undefined ? ", for any uid but the proxy's" : ''}) → redirected to the outbound listener port ${capture.to}`);
  else if (address !== '' || spec === null) steps.push(capture.why);
  if (!config.transparent.enabled) steps.push('warning: transparent.enabled is false, so captured connections would be treated as explicit HTTP');
  // A mesh name resolves to its VIP, so the connection is steered by the VIP, like in the sidecar.
  const dest = meshName !== undefined && address !== host ? table.resolve(address, port) : table.resolve(host.toLowerCase(), port);
  const vipOf = isIP(host) !== 0 ? vips?.service(host) : undefined;
  if (vipOf !== undefined && dest.kind !== 'service') steps.push(`${host} is the virtual IP of service "${vipOf}", which is not in the registry now`);
  else if (vipOf === undefined && vips?.inRange(host) === true) steps.push(`${host} is in dns.cidr but is no service's virtual IP`);
  const opaquePort = config.transparent.opaquePorts.includes(port);
  if (opaquePort) steps.push(`port ${port} is in transparent.opaquePorts: no protocol detection, opaque TCP`);
  else steps.push(`protocol detection (up to ${config.transparent.detectTimeoutMs} ms): HTTP/1 → HTTP routing by Host (else this address); TLS, other bytes or a silent client → opaque TCP`);
  if (dest.kind === 'service') {
    const svc = dest.service;
    const routes = config.services[svc]?.routes ?? [];
    const eps = table.endpoints(svc);
    const lb = config.services[svc]?.lb ?? config.lb;
    const why = dest.virtual === true ? ` (${address} is the virtual IP of service "${svc}", dns.cidr ${config.dns.cidr})` : isIP(host) !== 0 ? ` (${destination} is one of its endpoints)` : '';
    steps.push(`mesh service "${svc}"${why}`);
    steps.push(routes.length === 0 ? 'HTTP: route "default" (no route rules): all endpoints' : `HTTP: first matching of ${routes.length} route rule(s): ${routes.map((r, i) => r.name ?? `route-${i}`).join(', ')}`);
    steps.push(
      `cluster "${svc}": ${eps.length} endpoint(s) [${eps
        .slice(0, 5)
        .map((e) => e.address)
        .join(', ')}${eps.length > 5 ? ', ...' : ''}], lb ${lb}`,
    );
    if (dest.virtual === true) steps.push(`opaque TCP: relayed to an endpoint the ${lb} load balancer picks, at that endpoint's registered port (whatever port the virtual IP was dialled on)`);
    else steps.push(`opaque TCP: relayed to ${destination} itself (allowed: endpoint of a mesh service)`);
    return { destination, address, capture, path: opaquePort ? `opaque TCP → mesh service ${svc}` : `mesh service ${svc}`, steps };
  }
  const d = decideEgress(config, host, port);
  if (d.allowed) {
    steps.push(`not a mesh service; egress allowed: ${d.reason}`);
    return { destination, address, capture, path: opaquePort ? 'opaque TCP, egress allowed' : 'egress allowed', steps };
  }
  steps.push(`not a mesh service; egress denied: ${d.reason}`);
  steps.push('HTTP gets 403 MESH_ERR_EGRESS_DENIED; opaque TCP connections are closed (dreammesh_tunnels_total{outcome="denied"})');
  return { destination, address, capture, path: 'egress denied', steps };
}
