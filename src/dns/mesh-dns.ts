// DNS for mesh names in a running sidecar: keeps the virtual IP map in step with the registry
// (every service ever seen keeps its address) and serves it on dns.listen. Steering asks it
// which service a captured original destination's VIP belongs to.
import type { Logger } from 'pino';
import type { MeshConfig } from '../config/schema.js';
import type { Registry } from '../registry/registry.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { HostPort } from '../core/sidecar-context.js';
import { VirtualIps, defaultVipFile } from './virtual-ips.js';
import { Forwarder, defaultUpstreams, parseUpstreams, type Upstream } from './forwarder.js';
import { parseHostPort } from '../core/address.js';
import { canonicalHost, isLoopback } from '../core/canonical-address.js';
import { meshServiceFor, meshSuffixes, serviceNames, type ServiceNames } from './names.js';
import { DnsServer } from './server.js';

export class MeshDns {
  readonly vips: VirtualIps;
  private readonly server: DnsServer;
  private names: ServiceNames = new Map();
  private suffixes: string[];
  private unwatch: (() => void) | undefined;

  constructor(
    config: MeshConfig,
    private readonly registry: Registry,
    metrics: Metrics,
    private readonly log: Logger,
  ) {
    const dns = config.dns;
    this.vips = new VirtualIps({ cidr: dns.cidr, ipv6Cidr: dns.ipv6Cidr, file: dns.stateFile ?? defaultVipFile(), log });
    const upstreams = withoutSelf(dns.upstreams !== undefined ? parseUpstreams(dns.upstreams) : defaultUpstreams(), dns.listen, log);
    this.suffixes = meshSuffixes(config.domainSuffixes);
    this.server = new DnsServer({
      listen: dns.listen,
      ttl: dns.ttl,
      forwarder: new Forwarder(upstreams, dns.upstreamTimeoutMs, config.transparent.redirect.proxyMark),
      metrics,
      log,
      lookup: (name) => {
        const service = meshServiceFor(name, this.names, this.suffixes);
        if (service === undefined) return undefined;
        return { service, v4: this.vips.v4(service), v6: this.vips.v6(service) };
      },
    });
    if (upstreams.length === 0) log.warn('dns: no upstream resolvers (dns.upstreams unset and no nameserver in /etc/resolv.conf): names outside the mesh get SERVFAIL');
  }

  /** Call after the registry started: VIPs are assigned before the first query is answered. */
  async start(): Promise<HostPort> {
    this.apply([...this.registry.snapshot().services.keys()]);
    this.unwatch = this.registry.watch((s) => this.apply([...s.services.keys()]));
    const bound = await this.server.start();
    this.log.info({ listen: `${bound.host}:${bound.port}`, services: this.vips.count }, 'dns listener ready');
    return bound;
  }

  private apply(services: string[]): void {
    this.vips.assign(services);
    this.names = serviceNames(services);
  }

  /** domainSuffixes may change on reload (the rest of dns.* only at restart). */
  setDomainSuffixes(domainSuffixes: readonly string[]): void {
    this.suffixes = meshSuffixes(domainSuffixes);
  }

  /** The service whose virtual IP `ip` is (only services in the registry now). */
  serviceForVip(ip: string): string | undefined {
    const s = this.vips.service(ip);
    return s !== undefined && this.names.has(s.toLowerCase()) ? s : undefined;
  }

  async close(): Promise<void> {
    this.unwatch?.();
    await this.server.close();
  }
}

/**
 * An upstream that is this DNS listener itself (say dns.listen 127.0.0.1:53 and a resolv.conf
 * naming 127.0.0.1) would forward every unknown name back to us, forever: it is dropped.
 */
export function withoutSelf(upstreams: Upstream[], listen: string, log: Logger): Upstream[] {
  const l = parseHostPort(listen);
  if (l === null) return upstreams;
  const lh = canonicalHost(l.host.toLowerCase()) ?? l.host;
  const wildcard = lh === '0.0.0.0' || lh === '::';
  return upstreams.filter((u) => {
    const uh = canonicalHost(u.host.toLowerCase()) ?? u.host;
    const self = u.port === l.port && (uh === lh || (wildcard && isLoopback(uh)));
    if (self) log.warn({ upstream: `${u.host}:${u.port}`, listen }, 'dns: an upstream resolver is this DNS listener itself; it is not used');
    return !self;
  });
}
