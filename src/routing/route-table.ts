// The route table: which service a destination names, and which endpoints of it a request
// may go to (route rules: first match on path prefix and headers, then a weighted split by
// endpoint labels, see split.ts). A new table per registry snapshot is cheap: it holds the
// snapshot and a shared endpoint index; lookups never allocate much.
import type { IncomingHttpHeaders } from 'node:http';
import type { MeshConfig, RouteConfig, ServiceConfig } from '../config/schema.js';
import type { Endpoint, RegistrySnapshot } from '../registry/registry.js';
import type { Destination } from '../core/sidecar-context.js';
import { MeshError } from '../core/errors.js';
import { formatHostPort } from '../core/address.js';
import type { EndpointIndex } from './endpoint-index.js';
import { compileSplit, pickFilter, type CompiledSplit, type EndpointFilter } from './split.js';

export type { EndpointFilter } from './split.js';

export interface RouteDecision {
  readonly route: string;
  readonly filter: EndpointFilter;
}

const ALL: RouteDecision = Object.freeze({ route: 'default', filter: null });

export class RouteTable {
  constructor(
    private readonly config: MeshConfig,
    private readonly snapshot: RegistrySnapshot,
    /** endpoint "host:port" → service, maintained incrementally by the cluster manager. */
    private readonly byEndpoint: EndpointIndex,
    /** A virtual IP (dns.enabled) → its service. */
    private readonly byVirtualIp: (ip: string) => string | undefined = () => undefined,
  ) {}

  get version(): number {
    return this.snapshot.version;
  }

  serviceNames(): string[] {
    return [...this.snapshot.services.keys()].sort();
  }

  endpoints(service: string): readonly Endpoint[] {
    return this.snapshot.services.get(service)?.endpoints ?? [];
  }

  policy(service: string): ServiceConfig | undefined {
    return this.config.services[service];
  }

  /** The service a host name means, or undefined. "users", "users.mesh", "users.ns.svc.cluster.local". */
  serviceByName(host: string): string | undefined {
    const services = this.snapshot.services;
    if (services.has(host)) return host;
    for (const suffix of this.config.domainSuffixes) {
      if (host.length > suffix.length + 1 && host.endsWith(suffix) && host[host.length - suffix.length - 1] === '.') {
        const rest = host.slice(0, host.length - suffix.length - 1);
        if (services.has(rest)) return rest;
        // Kubernetes style: "<service>.<namespace>.<suffix>".
        const first = rest.split('.')[0]!;
        if (services.has(first)) return first;
      }
    }
    return undefined;
  }

  resolve(host: string, port: number | undefined): Destination {
    if (port !== undefined) {
      const byEp = this.byEndpoint.service(formatHostPort(host, port));
      if (byEp !== undefined) return { kind: 'service', service: byEp };
    }
    const vip = this.byVirtualIp(host);
    if (vip !== undefined && this.snapshot.services.has(vip)) return { kind: 'service', service: vip, virtual: true };
    const svc = this.serviceByName(host);
    if (svc !== undefined) return { kind: 'service', service: svc };
    return { kind: 'external', host, port: port ?? 80 };
  }

  /** Applies the service's route rules to a request. */
  route(service: string, path: string, headers: IncomingHttpHeaders): RouteDecision {
    const routes = this.config.services[service]?.routes;
    if (routes === undefined || routes.length === 0) return ALL;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (matches(r, path, headers)) return { route: r.name ?? `route-${i}`, filter: pickSplit(r) };
    }
    throw new MeshError('MESH_ERR_NO_ROUTE_MATCH', `service "${service}" has route rules and none matches ${path.slice(0, 200)}`, {
      details: { service, routes: routes.map((r, i) => r.name ?? `route-${i}`) },
    });
  }
}

function matches(r: RouteConfig, path: string, headers: IncomingHttpHeaders): boolean {
  const m = r.match;
  if (m.pathPrefix !== undefined && !path.startsWith(m.pathPrefix)) return false;
  if (m.headers) {
    for (const [name, want] of Object.entries(m.headers)) {
      const got = headers[name.toLowerCase()];
      if ((Array.isArray(got) ? got.join(', ') : got) !== want) return false;
    }
  }
  return true;
}

/** Splits compiled once per route: the config is frozen for the life of a sidecar. */
const compiled = new WeakMap<object, CompiledSplit>();

function pickSplit(r: RouteConfig): EndpointFilter {
  const split = r.split;
  if (split === undefined) return null;
  let c = compiled.get(split);
  if (c === undefined) compiled.set(split, (c = compileSplit(split)));
  return pickFilter(c);
}
