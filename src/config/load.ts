// Parse + validate + freeze. `dreammesh run`, `dreammesh validate` and hot reloads all use
// this one path, so a config is judged the same way everywhere.
import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ServiceSchema, type MeshConfig } from './schema.js';
import { configJsonSchema } from './json-schema.js';
import { MeshError } from '../core/errors.js';
import { parseHostPort, parseListenAddress } from '../core/address.js';
import { bypassEntryError, egressEntryError } from '../routing/egress.js';
import { splitErrors } from '../routing/split.js';

/** The inbound listener of a sidecar that has an app and names no listeners.inbound. */
export const DEFAULT_INBOUND = '0.0.0.0:15006';

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
// The exported JSON Schema itself, so that editors and the loader judge a file alike.
const validateConfig = ajv.compile<MeshConfig>(configJsonSchema());
export const validateService = ajv.compile(ServiceSchema);

export function describeAjvErrors(errors: ErrorObject[] | null | undefined, root = ''): string {
  if (!errors || errors.length === 0) return 'invalid';
  // Union branches produce one error per branch; the most specific (deepest) one helps most.
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const e of errors) {
    const field = (root + e.instancePath).replace(/^\//, '').replace(/\//g, '.') || '(top level)';
    let msg: string;
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      msg = `${field === '(top level)' ? extra : `${field}.${extra}`}: unknown key`;
    } else if (e.keyword === 'anyOf') {
      continue;
    } else {
      msg = `${field}: ${e.message ?? 'invalid'}`;
    }
    if (!seen.has(msg)) {
      seen.add(msg);
      lines.push(msg);
    }
  }
  return lines.slice(0, 8).join('; ');
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

/** Checks that the schema cannot express (address syntax, disjoint split selectors). */
function semanticErrors(c: MeshConfig): string[] {
  const errs: string[] = [];
  for (const [k, v] of Object.entries(c.listeners)) {
    if (v !== undefined && !parseListenAddress(v)) errs.push(`listeners.${k}: "${v}" is not host:port or unix:/path`);
  }
  if (c.app !== undefined && !parseListenAddress(c.app)) errs.push(`app: "${c.app}" is not host:port or unix:/path`);
  if (c.app === undefined && c.listeners.inbound !== undefined) {
    errs.push('listeners.inbound: set, but there is no app for it to forward to (set app, or remove listeners.inbound)');
  }
  for (const [name, svc] of Object.entries(c.services)) {
    svc.endpoints.forEach((ep, i) => {
      const a = typeof ep === 'string' ? ep : ep.address;
      if (!parseHostPort(a) && !a.startsWith('unix:')) errs.push(`services.${name}.endpoints.${i}: "${a}" is not host:port`);
    });
    svc.routes?.forEach((r, i) => {
      if (r.split !== undefined) errs.push(...splitErrors(r.split, `services.${name}.routes.${i}.split`));
    });
  }
  c.registry.etcd?.endpoints.forEach((u, i) => {
    // etcd3 takes "http(s)://host:port" or "host:port"; anything else would only fail to dial.
    if (!parseHostPort(u.replace(/^https?:\/\//, '').replace(/\/$/, ''))) errs.push(`registry.etcd.endpoints.${i}: "${u}" is not http(s)://host:port`);
  });
  const adv = c.instance?.address;
  if (adv !== undefined) {
    const hp = parseHostPort(adv);
    if (!hp || hp.port === 0 || hp.host === '0.0.0.0' || hp.host === '::') errs.push(`instance.address: "${adv}" is not a routable host:port`);
  }
  c.egress.allow.forEach((e, i) => {
    const err = egressEntryError(e, `egress.allow.${i}`);
    if (err !== null) errs.push(err);
  });
  c.egress.bypass.forEach((e, i) => {
    const err = bypassEntryError(e, `egress.bypass.${i}`);
    if (err !== null) errs.push(err);
  });
  return errs;
}

/** Validates an already-parsed object; throws MeshError(MESH_ERR_CONFIG_INVALID) naming the field. */
export function parseConfigObject(raw: unknown, source = 'config'): MeshConfig {
  const data = raw ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `${source}: the top level must be a mapping`);
  }
  const copy = structuredClone(data);
  if (!validateConfig(copy)) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `${source}: ${describeAjvErrors(validateConfig.errors)}`);
  }
  const sem = semanticErrors(copy);
  if (sem.length > 0) throw new MeshError('MESH_ERR_CONFIG_INVALID', `${source}: ${sem.join('; ')}`);
  // An app gets an inbound listener on the usual port unless one is named; no app, none.
  if (copy.app !== undefined && copy.listeners.inbound === undefined) copy.listeners.inbound = DEFAULT_INBOUND;
  return deepFreeze(copy);
}

export function parseYamlText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    const msg = e instanceof YAMLParseError ? e.message.split('\n')[0] : String(e);
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `${source}: not valid YAML: ${msg}`, { cause: e });
  }
}

export function parseConfigText(text: string, source = 'config'): MeshConfig {
  return parseConfigObject(parseYamlText(text, source), source);
}

export async function loadConfigFile(path: string): Promise<MeshConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `${path}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  return parseConfigText(text, path);
}
