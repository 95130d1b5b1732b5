// The loop guard's knowledge of this sidecar: the addresses its listeners are bound to. A
// destination is "own" when it names one of their ports on an address that reaches them:
// loopback, unspecified (0.0.0.0, ::), the bound address itself, or, for a listener bound to
// every interface, any interface address. Hosts arrive canonical (canonical-address.ts); names
// are judged by what they resolve to, at connect time, through `lookup`.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { networkInterfaces } from 'node:os';
import type { LookupFunction } from 'node:net';
import type { ListenAddress } from '../core/address.js';
import { MeshError } from '../core/errors.js';
import { canonicalHost, isLocalAddress } from '../core/canonical-address.js';

/** Interface addresses change rarely; asking the kernel once a second is enough. */
const INTERFACES_TTL_MS = 1000;

export class OwnListeners {
  private listeners: readonly { name: 'outbound' | 'inbound' | 'admin'; host: string; port: number }[] = [];
  private interfaces: ReadonlySet<string> = new Set();
  private interfacesAt = 0;

  set(bound: { readonly outbound: ListenAddress; readonly inbound: ListenAddress | undefined; readonly admin: ListenAddress }): void {
    const entries = [
      ['outbound', bound.outbound],
      ['inbound', bound.inbound],
      ['admin', bound.admin],
    ] as const;
    this.listeners = entries.flatMap(([name, a]) => (a?.kind === 'tcp' ? [{ name, host: canonicalHost(a.host.toLowerCase()) ?? a.host, port: a.port }] : []));
  }

  /**
   * `host` canonical (an address or a name); names other than localhost are not resolved here.
   * `exceptInbound`: for a service endpoint, where this sidecar's own inbound listener is a
   * fair target (a service calling itself goes outbound → inbound → app, and stops there).
   */
  has(host: string, port: number, exceptInbound = false): boolean {
    for (const l of this.listeners) {
      if (l.port !== port || (exceptInbound && l.name === 'inbound')) continue;
      if (host === l.host || isLocalAddress(host)) return true;
      if ((l.host === '0.0.0.0' || l.host === '::') && this.interfaceAddresses().has(host)) return true;
    }
    return false;
  }

  /**
   * A resolver for upstream connections to names: a name whose address is one of our
   * listeners fails the connect with MESH_ERR_LOOP (e.g. a DNS name for 127.0.0.1 under
   * egress.policy allow-any), before any byte reaches the listener.
   */
  lookupFor(port: number): LookupFunction {
    return (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
        if (err !== null) return callback(err, '', 0);
        const own = addresses.find((a) => this.has(canonicalHost(a.address.toLowerCase()) ?? a.address, port));
        // The error reaches the socket's 'error' as is, so the exchange answers 508, not 502.
        if (own !== undefined) return callback(new MeshError('MESH_ERR_LOOP', `${hostname} resolves to ${own.address}, this sidecar's own listener`), '', 0);
        if (options.all === true) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        const first = addresses[0]!;
        return callback(null, first.address, first.family);
      });
    };
  }

  private interfaceAddresses(): ReadonlySet<string> {
    const now = Date.now();
    if (now - this.interfacesAt > INTERFACES_TTL_MS) {
      const s = new Set<string>();
      for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) s.add(canonicalHost(a.address.toLowerCase()) ?? a.address);
      this.interfaces = s;
      this.interfacesAt = now;
    }
    return this.interfaces;
  }
}
