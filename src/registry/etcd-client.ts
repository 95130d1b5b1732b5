// Builds an etcd3 client from registry.etcd: TLS files, auth, a deadline on every unary call,
// and no hidden retry/circuit-breaker layers (the registry does its own backoff and resync, and
// etcd3's default breaker would keep a returning etcd unused for 5 s).
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3, IOptions } from 'etcd3';
import type { EtcdConfig } from '../config/schema.js';
import { MeshError } from '../core/errors.js';
import { requireOptional } from '../core/optional-dependency.js';

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** A policy that just runs the call: failures surface at once to our own retry loop. */
const passthrough = {
  execute: <T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => T | Promise<T>): Promise<T> => Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 0 })),
} as unknown as Policy;

function readPem(what: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `registry.etcd.tls.${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

export function createEtcdClient(cfg: EtcdConfig, callTimeoutMs = cfg.dialTimeoutMs): Etcd3 {
  const opts: IOptions = {
    hosts: [...cfg.endpoints],
    dialTimeout: cfg.dialTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: { global: passthrough, host: () => passthrough },
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
    },
  };
  if (cfg.auth !== undefined) opts.auth = { username: cfg.auth.username, password: cfg.auth.password };
  if (cfg.tls !== undefined) {
    const ca = readPem('caFile', cfg.tls.caFile);
    const cert = readPem('certFile', cfg.tls.certFile);
    const key = readPem('keyFile', cfg.tls.keyFile);
    if (ca === undefined) throw new MeshError('MESH_ERR_CONFIG_INVALID', 'registry.etcd.tls.caFile: required when tls is set');
    opts.credentials = { rootCertificate: ca, ...(key ? { privateKey: key } : {}), ...(cert ? { certChain: cert } : {}) };
  }
  // etcd3 (with gRPC) is an optional dependency; only sidecars configured for etcd load it.
  const { Etcd3: Client } = requireOptional<typeof import('etcd3')>('etcd3', 'registry.etcd');
  return new Client(opts);
}

/** Where the snapshot cache lives unless registry.etcd.cacheFile says otherwise. */
export function defaultCacheFile(cfg: EtcdConfig): string {
  const dir = process.env.DREAMMESH_STATE_DIR ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'dreammesh');
  const id = createHash('sha256')
    .update(`${[...cfg.endpoints].sort().join(',')}|${cfg.prefix}`)
    .digest('hex')
    .slice(0, 12);
  return join(dir, `etcd-cache-${id}.json`);
}
