// Two sidecars talking mTLS, as real processes with certificates from the real CLI:
// A (service "a", no app) calls B (service "b") whose app is a test upstream. A finds B in a
// registry file that marks B's inbound listener mtls. Each test gets its own directory.
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { CLI, spawnSidecar, type SpawnedSidecar } from './sidecar.js';
import { startUpstream, type TestUpstream } from './upstream.js';

const run = promisify(execFile);

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `dreammesh <args>` from dist; never throws on a non-zero exit. */
/** curl's exit code and output (never throws). */
export function curl(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-m', '5', ...args], (e, stdout, stderr) => resolve({ code: e === null ? 0 : ((e as { code?: number }).code ?? -1), out: stdout + stderr }));
  });
}

export async function dreammesh(...args: string[]): Promise<CliResult> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { timeout: 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

export async function caInit(dir: string, trustDomain?: string): Promise<void> {
  const r = await dreammesh('ca', 'init', '--dir', dir, ...(trustDomain !== undefined ? ['--trust-domain', trustDomain] : []));
  if (r.code !== 0) throw new Error(`ca init failed: ${r.stderr}`);
}

export async function issue(caDir: string, service: string, outDir: string, ttl = '24h'): Promise<{ cert: string; key: string; ca: string }> {
  const r = await dreammesh('cert', 'issue', '--ca', caDir, '--service', service, '--out', outDir, '--ttl', ttl);
  if (r.code !== 0) throw new Error(`cert issue failed: ${r.stderr}`);
  return { cert: join(outDir, 'cert.pem'), key: join(outDir, 'key.pem'), ca: join(outDir, 'ca.pem') };
}

export function mtlsBlock(dir: string, mode: 'off' | 'permissive' | 'strict', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mode, certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem'), reloadIntervalMs: 200, ...extra };
}

export interface MtlsMesh {
  readonly dir: string;
  readonly caDir: string;
  /** Where each sidecar's cert.pem, key.pem and ca.pem live. */
  readonly aCerts: string;
  readonly bCerts: string;
  readonly app: TestUpstream;
  readonly a: SpawnedSidecar;
  readonly b: SpawnedSidecar;
  readonly registryFile: string;
  close(): Promise<void>;
}

export interface MtlsMeshOptions {
  readonly bMode?: 'permissive' | 'strict';
  /** B's authz section. */
  readonly authz?: Record<string, unknown>;
  /** Config of B beyond the defaults. */
  readonly bExtra?: Record<string, unknown>;
  readonly aExtra?: Record<string, unknown>;
  /** The service name on B's certificate, and the service B runs as (default "b"; A always routes to "b"). */
  readonly bCertService?: string;
  /** More fields of B's mtls section. */
  readonly bMtls?: Record<string, unknown>;
  /** Lifetime of B's certificate (default 24h). */
  readonly bTtl?: string;
  /** A's certificate comes from another CA (A trusts both CAs; B trusts only its own). */
  readonly aFromOtherCa?: boolean;
  /** B's app address instead of the HTTP/1 test upstream (e.g. a gRPC server). */
  readonly bApp?: string;
  /** More fields of B's endpoint in A's registry file (e.g. protocol). */
  readonly bEndpoint?: Record<string, unknown>;
}

export async function startMtlsMesh(o: MtlsMeshOptions = {}): Promise<MtlsMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'dm-mtls-'));
  const caDir = join(dir, 'ca');
  const aCerts = join(dir, 'a');
  const bCerts = join(dir, 'b');
  await caInit(caDir);
  if (o.aFromOtherCa === true) {
    const other = join(dir, 'other-ca');
    await caInit(other);
    await issue(other, 'a', aCerts);
    const bundle = (await readFile(join(other, 'ca.pem'), 'utf8')) + (await readFile(join(caDir, 'ca.pem'), 'utf8'));
    await writeFile(join(aCerts, 'ca.pem'), bundle);
  } else await issue(caDir, 'a', aCerts);
  await issue(caDir, o.bCertService ?? 'b', bCerts, o.bTtl);
  const app = await startUpstream('b-app');
  const started: { close(): Promise<unknown> }[] = [app];
  try {
    const b = await spawnSidecar({ service: o.bCertService ?? 'b', app: o.bApp ?? app.address, mtls: mtlsBlock(bCerts, o.bMode ?? 'strict', o.bMtls), ...(o.authz ? { authz: o.authz } : {}), ...(o.bExtra ?? {}) });
    started.push({ close: () => b.stop() });
    const registryFile = join(dir, 'registry.yaml');
    await writeFile(registryFile, stringify({ services: { b: { endpoints: [{ address: b.inbound, mtls: true, ...(o.bEndpoint ?? {}) }] } } }));
    const a = await spawnSidecar({ service: 'a', registry: { file: registryFile }, mtls: mtlsBlock(aCerts, 'permissive'), ...(o.aExtra ?? {}) });
    return {
      dir,
      caDir,
      aCerts,
      bCerts,
      app,
      a,
      b,
      registryFile,
      close: async () => {
        await a.stop();
        await b.stop();
        await app.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const s of started.reverse()) await s.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** CONNECT target through a sidecar's outbound listener, then payload; resolves with what came back through the tunnel. */
export function tunnelExchange(outbound: string, target: string, payload: string): Promise<string> {
  const i = outbound.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = connect({ host: outbound.slice(0, i), port: Number(outbound.slice(i + 1)) }, () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let text = '';
    let sent = false;
    s.setTimeout(5000, () => s.destroy(new Error(`timeout; got ${text}`)));
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (!sent && text.includes('\r\n\r\n')) {
        sent = true;
        if (!text.startsWith('HTTP/1.1 200')) return s.end();
        text = '';
        s.write(payload);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(text));
  });
}
