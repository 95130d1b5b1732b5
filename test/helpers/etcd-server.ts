// A real single-member etcd for tests: loopback ports chosen at run time, a fresh temp data
// dir, and kill/restart on the same ports and data dir (outage tests). Needs the `etcd` and
// `etcdctl` binaries (Debian etcd-server / etcd-client; scripts/setup-system.sh).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deadPort } from './upstream.js';

const run = promisify(execFile);

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (openssl). */
export async function makeTestCerts(dir: string): Promise<EtcdTls> {
  const f = (n: string): string => join(dir, n);
  const ssl = (...a: string[]): Promise<unknown> => run('openssl', a);
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await writeFile(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  await ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=dreammesh-test-ca');
  for (const who of ['server', 'client']) {
    await ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=dreammesh-test-${who}`);
    await ssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '1', '-extfile', f(`${who}.ext`));
  }
  return { certFile: f('server.pem'), keyFile: f('server.key'), caFile: f('ca.pem'), clientCertFile: f('client.pem'), clientKeyFile: f('client.key') };
}

export interface EtcdServer {
  /** "http://127.0.0.1:port" */
  readonly url: string;
  readonly clientPort: number;
  readonly dataDir: string;
  /** SIGKILL (default) and wait for exit; the data dir stays. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts again on the same ports and data dir. */
  restart(): Promise<void>;
  /** `etcdctl` against this server; resolves with stdout. */
  ctl(...args: string[]): Promise<string>;
  /** Stops and deletes the data dir. */
  stop(): Promise<void>;
  log(): string;
}

export interface EtcdTls {
  /** PEM files: the server's certificate and key, and the CA that signs client certificates. */
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  /** Client files for etcdctl and the health check. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

export async function startEtcd(opts: { tls?: EtcdTls } = {}): Promise<EtcdServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dm-etcd-'));
  const clientPort = await deadPort();
  const peerPort = await deadPort();
  const tls = opts.tls;
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;
  let output = '';
  const args = [
    '--name',
    'dm-test',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    url,
    '--advertise-client-urls',
    url,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `dm-test=${peer}`,
    '--initial-cluster-state',
    'new',
    '--heartbeat-interval',
    '50',
    '--election-timeout',
    '500',
    '--logger',
    'zap',
    '--log-level',
    'error',
    ...(tls ? ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile, '--client-cert-auth'] : []),
  ];
  const tlsCtl = tls ? ['--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile] : [];
  const launch = async (): Promise<void> => {
    const c = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) throw new Error(`etcd exited with ${c.exitCode}:\n${output.slice(-2000)}`);
      try {
        if (tls) {
          await run('etcdctl', ['--endpoints', url, ...tlsCtl, '--dial-timeout', '500ms', 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' } });
          return;
        }
        const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
        if (r.ok && ((await r.json()) as { health?: string }).health === 'true') return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill('SIGKILL');
    throw new Error(`etcd did not become healthy in 15 s:\n${output.slice(-2000)}`);
  };
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await exited;
  };
  await launch();
  return {
    url,
    clientPort,
    dataDir,
    kill,
    restart: launch,
    ctl: async (...a: string[]) => (await run('etcdctl', ['--endpoints', url, ...tlsCtl, ...a], { env: { ...process.env, ETCDCTL_API: '3' } })).stdout,
    stop: async () => {
      await kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    },
    log: () => output,
  };
}

let cacheFiles = 0;

/** registry.etcd for a test sidecar: short lease and deadlines, and a cache file of its own in dir. */
export function etcdTestConfig(etcd: EtcdServer, dir: string, prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { endpoints: [etcd.url], prefix, leaseTtlSeconds: 2, dialTimeoutMs: 3000, withdrawGraceMs: 100, cacheFile: join(dir, `cache-${++cacheFiles}.json`), ...extra };
}
