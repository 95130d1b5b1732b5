// HTTP/2 rows of the bench (`dreammesh bench --h2`): h2load through the sidecar's explicit h2c
// entry and through HAProxy (`proto h2` on bind and server lines) in the same run, for plain
// h2c GETs and gRPC-shaped unary POSTs (length-prefixed message, application/grpc, te:
// trailers). The upstream is a second HAProxy answering by itself (h2c, C, one thread), so the
// upstream is never what limits either proxy. Reported per row: calls/s, CPU per call of the
// proxy process (from /proc), and p99 latency (from h2load's per-request log).
// gRPC unary also runs over an mTLS hop between two proxies: sidecar A (explicit h2c) → TLS 1.3
// ALPN h2 with verified certificates both ways → sidecar B's strict inbound → the upstream,
// beside HAProxy → TLS h2 (verified both ways) → HAProxy; CPU per call is both processes'.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar, freePort, type BenchProcess } from './processes.js';
import { cpuSeconds } from './proc-stats.js';
import { initCa, issueCert } from '../src/tls/issuer.js';

export interface H2BenchOptions {
  /** Requests per measured run. */
  readonly requests: number;
  readonly connections: number;
  /** Concurrent streams per connection. */
  readonly streams: number;
  readonly progress: (line: string) => void;
}

export interface H2Row {
  readonly workload: 'h2c GET' | 'gRPC unary';
  readonly proxy: 'dreammesh explicit h2c' | 'haproxy proto h2' | 'dreammesh h2c → mTLS h2 → inbound' | 'haproxy → TLS h2 → haproxy';
  readonly callsPerSecond: number;
  readonly cpuMicrosPerCall: number;
  readonly p99Ms: number;
  readonly failed: number;
  readonly command: string;
}

const SERVICE = 'bench';

/** One HAProxy process from a config body; resolves once the port answers. */
async function haproxy(lines: string[], port: number, dir: string, name: string): Promise<BenchProcess> {
  const cfg = join(dir, `${name}.cfg`);
  writeFileSync(cfg, ['global', '  nbthread 1', '  maxconn 4000', 'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', ...lines, ''].join('\n'));
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`haproxy (${name}) did not start: ${err.slice(-300)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

async function answers(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

interface H2loadResult {
  readonly rps: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly p99Ms: number;
}

function h2load(args: string[], logFile: string): Promise<H2loadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', [...args, '--log-file', logFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      const rps = /finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out);
      const reqs = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
      if (rps === null || reqs === null) return reject(new Error(`h2load output not understood:\n${out.slice(-800)}`));
      const durations = readFileSync(logFile, 'latin1')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => Number(l.split('\t')[2]))
        .filter((n) => Number.isFinite(n))
        .sort((a, b) => a - b);
      const p99 = durations.length === 0 ? NaN : durations[Math.min(durations.length - 1, Math.floor(durations.length * 0.99))]! / 1000;
      resolve({ rps: Number(rps[1]), succeeded: Number(reqs[1]), failed: Number(reqs[2]), p99Ms: p99 });
    });
  });
}

/** A gRPC unary request body: one uncompressed length-prefixed 16-byte message. */
function grpcBody(dir: string): string {
  const file = join(dir, 'grpc-request.bin');
  const msg = Buffer.alloc(16, 0x61);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  writeFileSync(file, Buffer.concat([head, msg]));
  return file;
}

export async function runH2Bench(o: H2BenchOptions): Promise<H2Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'dm-h2-bench-'));
  const started: BenchProcess[] = [];
  try {
    const upPort = await freePort();
    const proxyPort = await freePort();
    // The upstream answers every request itself: a plain 200, or a gRPC Trailers-Only OK.
    started.push(
      await haproxy(
        [
          'frontend upstream',
          `  bind 127.0.0.1:${upPort} proto h2`,
          '  http-request return status 200 content-type application/grpc hdr grpc-status 0 if { req.hdr(content-type) -m beg application/grpc }',
          '  http-request return status 200 content-type text/plain string ok',
        ],
        upPort,
        dir,
        'upstream',
      ),
    );
    const hap = await haproxy(
      ['frontend bench', `  bind 127.0.0.1:${proxyPort} proto h2`, '  default_backend upstream', 'backend upstream', '  http-reuse always', `  server u1 127.0.0.1:${upPort} proto h2`],
      proxyPort,
      dir,
      'proxy',
    );
    started.push(hap);
    const mesh = await startSidecar({
      listeners: { outbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
      accessLog: { enabled: false },
      logLevel: 'warn',
      services: { [SERVICE]: { endpoints: [{ address: `127.0.0.1:${upPort}`, protocol: 'http2' }] } },
    });
    started.push(mesh);
    const body = grpcBody(dir);
    const hops = await mtlsHops(dir, upPort, started);
    const proxies: { proxy: H2Row['proxy']; url: string; pids: number[]; only?: H2Row['workload'] }[] = [
      { proxy: 'dreammesh explicit h2c', url: `http://${mesh.outbound}/`, pids: [mesh.pid] },
      { proxy: 'haproxy proto h2', url: `http://127.0.0.1:${proxyPort}/`, pids: [hap.pid] },
      ...hops.map((h) => ({ ...h, only: 'gRPC unary' as const })),
    ];
    const workloads = [
      { workload: 'h2c GET' as const, path: 'get', extra: [] as string[] },
      { workload: 'gRPC unary' as const, path: 'mesh.Echo/Unary', extra: ['-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers'] },
    ];
    const rows: H2Row[] = [];
    for (const w of workloads) {
      for (const p of proxies) {
        if (p.only !== undefined && p.only !== w.workload) continue;
        const base = ['-c', String(o.connections), '-m', String(o.streams), '-H', `:authority: ${SERVICE}`, ...w.extra];
        const url = p.url + w.path;
        // Warm-up (JIT, pools), not measured.
        await h2load(['-n', String(Math.min(20_000, o.requests)), ...base, url], join(dir, 'warm.log'));
        const cpuOf = (): number => p.pids.reduce((t, pid) => t + cpuSeconds(pid), 0);
        const cpu0 = cpuOf();
        const args = ['-n', String(o.requests), ...base, url];
        const r = await h2load(args, join(dir, 'run.log'));
        const cpu = cpuOf() - cpu0;
        const row: H2Row = {
          workload: w.workload,
          proxy: p.proxy,
          callsPerSecond: Math.round(r.rps),
          cpuMicrosPerCall: Math.round((cpu / Math.max(1, r.succeeded)) * 1e6),
          p99Ms: Math.round(r.p99Ms * 100) / 100,
          failed: r.failed,
          command: `h2load ${args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}`,
        };
        o.progress(`${row.workload} via ${row.proxy}: ${row.callsPerSecond} calls/s, ${row.cpuMicrosPerCall} µs CPU/call, p99 ${row.p99Ms} ms, ${row.failed} failed`);
        rows.push(row);
      }
    }
    return rows;
  } finally {
    for (const p of started.reverse()) await p.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The two-proxy chains with an mTLS hop between them (gRPC unary rows); processes join `started`. */
async function mtlsHops(dir: string, upPort: number, started: BenchProcess[]): Promise<{ proxy: H2Row['proxy']; url: string; pids: number[] }[]> {
  const [ca, a, b] = [join(dir, 'ca'), join(dir, 'a'), join(dir, 'b')];
  await initCa({ dir: ca, trustDomain: 'dreammesh.local', ttlMs: 86_400_000 });
  await issueCert({ caDir: ca, service: 'a', outDir: a, ttlMs: 3_600_000 });
  await issueCert({ caDir: ca, service: SERVICE, outDir: b, ttlMs: 3_600_000 });
  const mtls = (d: string, mode: string): Record<string, unknown> => ({ mode, certFile: join(d, 'cert.pem'), keyFile: join(d, 'key.pem'), caFile: join(d, 'ca.pem') });
  const inPort = await freePort();
  const quiet = { accessLog: { enabled: false }, logLevel: 'warn' };
  const sb = await startSidecar({ ...quiet, service: SERVICE, app: `127.0.0.1:${upPort}`, listeners: { outbound: '127.0.0.1:0', inbound: `127.0.0.1:${inPort}`, admin: '127.0.0.1:0' }, mtls: mtls(b, 'strict') });
  started.push(sb);
  const sa = await startSidecar({
    ...quiet,
    service: 'a',
    listeners: { outbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
    mtls: mtls(a, 'permissive'),
    services: { [SERVICE]: { endpoints: [{ address: `127.0.0.1:${inPort}`, mtls: true }] } },
  });
  started.push(sa);
  // HAProxy: the same chain, TLS 1.3 with ALPN h2 and certificates verified both ways.
  const pem = (d: string): string => {
    const f = `${d}.pem`;
    writeFileSync(f, readFileSync(join(d, 'cert.pem'), 'utf8') + readFileSync(join(d, 'key.pem'), 'utf8'));
    return f;
  };
  const caPem = join(ca, 'ca.pem');
  const [frontPort, tlsPort] = [await freePort(), await freePort()];
  const tls = `ca-file ${caPem} verify required alpn h2 ssl-min-ver TLSv1.3`;
  started.push(
    await haproxy(
      ['frontend mtls_in', `  bind 127.0.0.1:${tlsPort} ssl crt ${pem(b)} ${tls}`, '  default_backend app', 'backend app', '  http-reuse always', `  server u1 127.0.0.1:${upPort} proto h2`],
      tlsPort,
      dir,
      'mtls-in',
    ),
  );
  const front = await haproxy(
    ['frontend bench_mtls', `  bind 127.0.0.1:${frontPort} proto h2`, '  default_backend out', 'backend out', '  http-reuse always', `  server b 127.0.0.1:${tlsPort} ssl crt ${pem(a)} ${tls}`],
    frontPort,
    dir,
    'mtls-out',
  );
  started.push(front);
  const tlsIn = started[started.length - 2]!;
  return [
    { proxy: 'dreammesh h2c → mTLS h2 → inbound', url: `http://${sa.outbound}/`, pids: [sa.pid, sb.pid] },
    { proxy: 'haproxy → TLS h2 → haproxy', url: `http://127.0.0.1:${frontPort}/`, pids: [front.pid, tlsIn.pid] },
  ];
}

/** The reference row of a row: HAProxy with the same number of hops. */
function referenceOf(r: H2Row): H2Row['proxy'] {
  return r.proxy === 'dreammesh h2c → mTLS h2 → inbound' || r.proxy === 'haproxy → TLS h2 → haproxy' ? 'haproxy → TLS h2 → haproxy' : 'haproxy proto h2';
}

export function renderH2Table(rows: readonly H2Row[]): string {
  const lines = ['| workload | proxy | calls/s | CPU µs/call | p99 ms | failed | vs HAProxy (calls/s) |', '|---|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    const ref = rows.find((x) => x.workload === r.workload && x.proxy === referenceOf(r));
    const ratio = ref === undefined || ref.callsPerSecond === 0 ? '' : (r.callsPerSecond / ref.callsPerSecond).toFixed(2);
    lines.push(`| ${r.workload} | ${r.proxy} | ${r.callsPerSecond} | ${r.cpuMicrosPerCall} | ${r.p99Ms} | ${r.failed} | ${ratio} |`);
  }
  return lines.join('\n');
}
