// Turns endpoint entries from config, files or etcd into validated Endpoint records.
import { parseHostPort } from '../core/address.js';
import type { EndpointConfig } from '../config/schema.js';
import type { Endpoint, ServiceRecord } from './registry.js';

export function toEndpoint(e: EndpointConfig): Endpoint | null {
  const { address, weight, labels, mtls, protocol } = typeof e === 'string' ? { address: e, weight: 1, labels: {}, mtls: false, protocol: undefined } : e;
  const hp = parseHostPort(address);
  if (!hp || hp.port === 0) return null;
  return Object.freeze({
    address,
    host: hp.host,
    port: hp.port,
    weight: weight ?? 1,
    labels: Object.freeze({ ...(labels ?? {}) }),
    ...(mtls === true ? { mtls: true } : {}),
    ...(protocol !== undefined && protocol !== 'auto' ? { protocol } : {}),
  });
}

export function toServiceRecord(name: string, endpoints: readonly EndpointConfig[]): ServiceRecord {
  const eps: Endpoint[] = [];
  const seen = new Set<string>();
  for (const e of endpoints) {
    const ep = toEndpoint(e);
    if (ep && !seen.has(ep.address)) {
      seen.add(ep.address);
      eps.push(ep);
    }
  }
  return Object.freeze({ name, endpoints: Object.freeze(eps) });
}
