// The etcd key layout and record format, shared by the registry, `dreammesh services` and the
// benchmark: <prefix>services/<service>/<instance-id> → {"address","weight","labels"} (JSON).
import { parseHostPort } from '../core/address.js';
import type { Endpoint, EndpointProtocol } from './registry.js';

export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Instance ids: anything printable without "/" (the default id is the address itself). */
export const INSTANCE_ID = /^[^/\s]{1,253}$/;

export interface InstanceRecord {
  readonly address: string;
  readonly weight?: number;
  readonly labels?: Readonly<Record<string, string>>;
  /** The instance's inbound listener speaks mTLS. */
  readonly mtls?: boolean;
  readonly protocol?: EndpointProtocol;
}

export function servicesPrefix(prefix: string): string {
  return `${prefix}services/`;
}

export function instanceKey(prefix: string, service: string, id: string): string {
  return `${servicesPrefix(prefix)}${service}/${id}`;
}

/** The service and instance id a key names, or null when the key is not an instance key. */
export function parseInstanceKey(prefix: string, key: string): { service: string; id: string } | null {
  const base = servicesPrefix(prefix);
  if (!key.startsWith(base)) return null;
  const rest = key.slice(base.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return null;
  const service = rest.slice(0, slash);
  const id = rest.slice(slash + 1);
  if (!SERVICE_NAME.test(service) || !INSTANCE_ID.test(id)) return null;
  return { service, id };
}

/** Validates a record value; throws an Error whose message says what is wrong. */
export function parseInstanceValue(text: string): Endpoint {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('value is not JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('value is not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.address !== 'string') throw new Error('address: missing or not a string');
  const hp = parseHostPort(o.address);
  if (!hp || hp.port === 0) throw new Error(`address: "${o.address}" is not host:port`);
  if (hp.host === '0.0.0.0' || hp.host === '::') throw new Error(`address: "${o.address}" is not routable`);
  let weight = 1;
  if (o.weight !== undefined) {
    if (typeof o.weight !== 'number' || !Number.isInteger(o.weight) || o.weight < 0 || o.weight > 10000) throw new Error('weight: must be an integer 0..10000');
    weight = o.weight;
  }
  const labels: Record<string, string> = {};
  if (o.labels !== undefined) {
    if (o.labels === null || typeof o.labels !== 'object' || Array.isArray(o.labels)) throw new Error('labels: must be an object of strings');
    for (const [k, val] of Object.entries(o.labels as Record<string, unknown>)) {
      if (typeof val !== 'string') throw new Error(`labels.${k}: must be a string`);
      labels[k] = val;
    }
  }
  if (o.mtls !== undefined && typeof o.mtls !== 'boolean') throw new Error('mtls: must be true or false');
  let protocol: EndpointProtocol | undefined;
  if (o.protocol !== undefined) {
    if (o.protocol !== 'http1' && o.protocol !== 'http2' && o.protocol !== 'auto') throw new Error('protocol: must be http1, http2 or auto');
    protocol = o.protocol;
  }
  return Object.freeze({
    address: o.address,
    host: hp.host,
    port: hp.port,
    weight,
    labels: Object.freeze(labels),
    ...(o.mtls === true ? { mtls: true } : {}),
    ...(protocol !== undefined && protocol !== 'auto' ? { protocol } : {}),
  });
}

export function encodeInstance(e: InstanceRecord): string {
  return JSON.stringify({ address: e.address, weight: e.weight ?? 1, labels: e.labels ?? {}, ...(e.mtls === true ? { mtls: true } : {}), ...(e.protocol !== undefined ? { protocol: e.protocol } : {}) });
}
