// `dreammesh services list|get|put|rm`: the registry the config describes, for operators.
// etcd (registry.etcd) is read and written directly; the file registry and inline services are
// listed, and are read-only here (edit the file: running sidecars reload it).
import { parseArgs } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { loadConfigFile } from '../config/load.js';
import type { MeshConfig } from '../config/schema.js';
import { isMeshError, MeshError } from '../core/errors.js';
import { createEtcdClient } from '../registry/etcd-client.js';
import { encodeInstance, INSTANCE_ID, instanceKey, parseInstanceKey, parseInstanceValue, SERVICE_NAME, servicesPrefix } from '../registry/etcd-records.js';
import { FileRegistry } from '../registry/file-registry.js';
import { inlineServices } from '../registry/create-registry.js';

const USAGE = `usage: dreammesh services <command> [--config FILE] [options]
  list [--json]                          every instance, from every configured source
  get SERVICE [--json]                   the instances of one service
  put SERVICE ADDRESS [--weight N] [--label k=v]... [--id ID] [--ttl SECONDS] [--mtls]
                                         add or replace an instance in etcd (no --ttl: stays until rm;
                                         --mtls: a sidecar's inbound listener reached over mTLS)
  rm SERVICE ADDRESS|ID                  remove an instance from etcd
The config comes from --config FILE or $DREAMMESH_CONFIG.`;

interface Row {
  service: string;
  address: string;
  weight: number;
  labels: Record<string, string>;
  source: 'config' | 'file' | 'etcd';
  key?: string;
  /** etcd: held by a lease (a live sidecar) rather than written permanently. */
  leased?: boolean;
  /** Reached over mTLS (shown only when true). */
  mtls?: boolean;
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean', default: false },
        weight: { type: 'string' },
        label: { type: 'string', multiple: true, default: [] },
        id: { type: 'string' },
        ttl: { type: 'string' },
        mtls: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`dreammesh services: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const {
    values: o,
    positionals: [cmd, ...args],
  } = parsed;
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const arity: Record<string, number> = { list: 0, get: 1, put: 2, rm: 2 };
  if (cmd === undefined || arity[cmd] === undefined || args.length !== arity[cmd]) {
    process.stderr.write(`${cmd !== undefined && arity[cmd] === undefined ? `dreammesh services: unknown command "${cmd}"\n` : ''}${USAGE}\n`);
    return 2;
  }
  const file = o.config ?? process.env.DREAMMESH_CONFIG;
  if (file === undefined) {
    process.stderr.write('dreammesh services: --config FILE is required (or set DREAMMESH_CONFIG)\n');
    return 2;
  }
  try {
    const config = await loadConfigFile(file);
    switch (cmd) {
      case 'list':
        return print(await collect(config), o.json);
      case 'get': {
        const rows = (await collect(config)).filter((r) => r.service === args[0]);
        if (rows.length === 0) {
          process.stderr.write(`dreammesh services: no service "${args[0]}"\n`);
          return 1;
        }
        return print(rows, o.json);
      }
      case 'put':
        return await put(config, args[0]!, args[1]!, o);
      default:
        return await remove(config, args[0]!, args[1]!);
    }
  } catch (e) {
    process.stderr.write(`dreammesh services: ${isMeshError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
}

async function collect(config: MeshConfig): Promise<Row[]> {
  const rows: Row[] = [];
  const add = (source: Row['source'], services: ReadonlyMap<string, { endpoints: readonly { address: string; weight: number; labels: Readonly<Record<string, string>>; mtls?: boolean }[] }>): void => {
    for (const [service, svc] of services) for (const e of svc.endpoints) rows.push({ service, address: e.address, weight: e.weight, labels: { ...e.labels }, source, ...(e.mtls === true ? { mtls: true } : {}) });
  };
  const inline = inlineServices(config);
  await inline.start();
  add('config', inline.snapshot().services);
  if (config.registry.file !== undefined) {
    const fileReg = new FileRegistry(config.registry.file, pino({ level: 'silent' }), () => {});
    try {
      await fileReg.start();
      add('file', fileReg.snapshot().services);
    } finally {
      await fileReg.close();
    }
  }
  if (config.registry.etcd !== undefined) rows.push(...(await withEtcd(config, (c) => etcdRows(config, c))));
  return rows.sort((a, b) => a.service.localeCompare(b.service) || a.address.localeCompare(b.address));
}

async function etcdRows(config: MeshConfig, client: Etcd3): Promise<Row[]> {
  const prefix = config.registry.etcd!.prefix;
  const res = await client.getAll().prefix(servicesPrefix(prefix)).exec();
  const rows: Row[] = [];
  for (const kv of res.kvs) {
    const key = kv.key.toString();
    const id = parseInstanceKey(prefix, key);
    try {
      if (id === null) throw new Error('key is not <prefix>services/<service>/<instance-id>');
      const e = parseInstanceValue(kv.value.toString());
      rows.push({ service: id.service, address: e.address, weight: e.weight, labels: { ...e.labels }, source: 'etcd', key, leased: kv.lease !== '0', ...(e.mtls === true ? { mtls: true } : {}) });
    } catch (err) {
      process.stderr.write(`warning: ${key}: malformed record ignored by sidecars: ${(err as Error).message}\n`);
    }
  }
  return rows;
}

async function withEtcd<T>(config: MeshConfig, fn: (c: Etcd3) => Promise<T>): Promise<T> {
  const cfg = config.registry.etcd;
  if (cfg === undefined) {
    const hint = config.registry.file !== undefined ? `registry.file is read-only here: edit ${config.registry.file} (running sidecars reload it)` : 'configure registry.etcd';
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `no writable registry: ${hint}`);
  }
  const client = createEtcdClient(cfg);
  try {
    return await fn(client);
  } catch (e) {
    if (isMeshError(e)) throw e;
    throw new MeshError('MESH_ERR_REGISTRY_UNAVAILABLE', `etcd at ${cfg.endpoints.join(',')}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  } finally {
    client.close();
  }
}

async function put(config: MeshConfig, service: string, address: string, o: { weight?: string; label: string[]; id?: string; ttl?: string; mtls?: boolean }): Promise<number> {
  if (!SERVICE_NAME.test(service)) throw new MeshError('MESH_ERR_CONFIG_INVALID', `service name "${service}" must match ${SERVICE_NAME.source}`);
  const id = o.id ?? address;
  if (!INSTANCE_ID.test(id)) throw new MeshError('MESH_ERR_CONFIG_INVALID', `instance id "${id}" must not contain "/" or spaces`);
  const labels: Record<string, string> = {};
  for (const l of o.label) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new MeshError('MESH_ERR_CONFIG_INVALID', `--label "${l}": expected key=value`);
    labels[l.slice(0, eq)] = l.slice(eq + 1);
  }
  const weight = o.weight === undefined ? 1 : Number(o.weight);
  const value = encodeInstance({ address, weight, labels, ...(o.mtls === true ? { mtls: true } : {}) });
  try {
    parseInstanceValue(value);
  } catch (e) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', (e as Error).message);
  }
  const ttl = o.ttl === undefined ? undefined : Number(o.ttl);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1)) throw new MeshError('MESH_ERR_CONFIG_INVALID', '--ttl: whole seconds, at least 1');
  const key = instanceKey(config.registry.etcd?.prefix ?? '', service, id);
  await withEtcd(config, async (c) => {
    if (ttl === undefined) await c.put(key).value(value);
    else {
      const lease = c.lease(ttl, { autoKeepAlive: false });
      await lease.put(key).value(value);
      lease.release();
    }
  });
  process.stdout.write(`${key} = ${value}${ttl === undefined ? '' : ` (expires in ${ttl} s)`}\n`);
  return 0;
}

async function remove(config: MeshConfig, service: string, which: string): Promise<number> {
  const removed = await withEtcd(config, async (c) => {
    const prefix = config.registry.etcd!.prefix;
    const keys = new Set<string>();
    if (INSTANCE_ID.test(which) && (await c.get(instanceKey(prefix, service, which)).string()) !== null) keys.add(instanceKey(prefix, service, which));
    const all = await c
      .getAll()
      .prefix(`${servicesPrefix(prefix)}${service}/`)
      .strings();
    for (const [key, value] of Object.entries(all)) {
      try {
        if (parseInstanceValue(value).address === which) keys.add(key);
      } catch {
        /* malformed: only removable by its id */
      }
    }
    for (const key of keys) await c.delete().key(key);
    return [...keys];
  });
  if (removed.length === 0) {
    process.stderr.write(`dreammesh services: no instance "${which}" of service "${service}" in etcd\n`);
    return 1;
  }
  for (const k of removed) process.stdout.write(`removed ${k}\n`);
  return 0;
}

function print(rows: Row[], json: boolean): number {
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const table = [
    ['SERVICE', 'ADDRESS', 'WEIGHT', 'LABELS', 'SOURCE'],
    ...rows.map((r) => [
      r.service,
      r.address,
      String(r.weight),
      Object.entries(r.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '-',
      (r.source === 'etcd' ? `etcd${r.leased ? ' (lease)' : ''}` : r.source) + (r.mtls === true ? ', mtls' : ''),
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) process.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n');
  return 0;
}
