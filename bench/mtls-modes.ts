// mTLS rows: explicit → sidecar A → mTLS (pooled) → sidecar B's inbound → app, beside the same
// chain built from two HAProxy instances (TLS with verified client and server certificates on
// the hop between them). Each row also reports the handshake cost of a new mTLS connection on
// its TLS-terminating hop (bench/mtls-handshake.ts). The measured proxy process is the first
// hop (A, or the first HAProxy); the second runs beside it on the same cores.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Mode, ModeSetup } from './modes.js';
import { sidecarConfig, joinDir, type BenchEnv } from './bench-env.js';
import { startSidecar, freePort, runHaproxy } from './processes.js';
import { inNetns } from './topology.js';
import { initCa, issueCert } from '../src/tls/issuer.js';

const run = promisify(execFile);
const HANDSHAKE = fileURLToPath(new URL('./mtls-handshake.js', import.meta.url));

/** What the handshake probe measured, for the report (set by setup, read after the row). */
export const handshakes = new Map<string, { newConnMs: number; keepAliveMs: number; handshakeMs: number }>();

async function certs(env: BenchEnv): Promise<{ ca: string; a: string; b: string }> {
  const ca = joinDir(env, 'mtls-ca');
  const a = joinDir(env, 'mtls-a');
  const b = joinDir(env, 'mtls-b');
  try {
    readFileSync(join(ca, 'ca.pem'));
  } catch {
    await initCa({ dir: ca, trustDomain: 'dreammesh.local', ttlMs: 86_400_000 });
    await issueCert({ caDir: ca, service: 'a', outDir: a, ttlMs: 3_600_000 });
    await issueCert({ caDir: ca, service: 'bench', outDir: b, ttlMs: 3_600_000 });
  }
  return { ca, a, b };
}

function mtlsOf(dir: string, mode: 'permissive' | 'strict'): Record<string, unknown> {
  return { mode, certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem') };
}

async function probe(name: string, env: BenchEnv, port: number, certDir: string, say: (s: string) => void = () => {}): Promise<void> {
  try {
    const argv = inNetns(env.netns, [process.execPath, HANDSHAKE, '127.0.0.1', String(port), certDir, '300']);
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 60_000 });
    const r = JSON.parse(stdout) as { newConnMs: number; keepAliveMs: number; handshakeMs: number };
    handshakes.set(name, r);
    say(`handshake probe: ${r.newConnMs.toFixed(3)} ms per request on a new mTLS connection, ${r.keepAliveMs.toFixed(3)} ms kept alive: ${r.handshakeMs.toFixed(3)} ms per handshake`);
  } catch (e) {
    say(`handshake probe failed: ${(e as Error).message.split('\n')[0]}`);
  }
}

const log = (s: string): void => void process.stderr.write(`  ${s}\n`);

async function sidecarMtls(env: BenchEnv): Promise<ModeSetup> {
  const c = await certs(env);
  const inboundPort = await freePort();
  const upstream = `${env.upstream.host}:${env.upstream.port}`;
  const prefix = inNetns(env.netns, []);
  const b = await startSidecar(
    {
      ...sidecarConfig(upstream, '127.0.0.1:0'),
      service: 'bench',
      app: upstream,
      listeners: { outbound: '127.0.0.1:0', inbound: `127.0.0.1:${inboundPort}`, admin: '127.0.0.1:0' },
      mtls: mtlsOf(c.b, 'strict'),
    },
    prefix,
  );
  try {
    const base = sidecarConfig(upstream, '127.0.0.1:0', { mtls: mtlsOf(c.a, 'permissive') });
    const services = { ...(base.services as Record<string, unknown>), bench: { endpoints: [{ address: `127.0.0.1:${inboundPort}`, mtls: true }] } };
    const a = await startSidecar({ ...base, services }, prefix);
    await probe('mtls', env, inboundPort, c.a, log);
    const i = a.outbound.lastIndexOf(':');
    return {
      target: { transport: { tcp: { host: a.outbound.slice(0, i), port: Number(a.outbound.slice(i + 1)) } }, shape: 'origin', authority: 'bench', ...(env.netns ? { netns: env.netns } : {}) },
      proxyPid: a.pid,
      teardown: async () => {
        await a.stop();
        await b.stop();
      },
    };
  } catch (e) {
    await b.stop();
    throw e;
  }
}

async function haproxyMtls(env: BenchEnv): Promise<ModeSetup> {
  const c = await certs(env);
  const dir = mkdtempSync(joinDir(env, 'haproxy-mtls-'));
  const pem = (d: string): string => {
    const f = join(dir, `${d.split('/').pop()!}.pem`);
    writeFileSync(f, readFileSync(join(d, 'cert.pem'), 'utf8') + readFileSync(join(d, 'key.pem'), 'utf8'));
    return f;
  };
  const [aPem, bPem, caPem] = [pem(c.a), pem(c.b), join(c.ca, 'ca.pem')];
  const [frontPort, tlsPort] = [await freePort(), await freePort()];
  const common = ['global', '  nbthread 1', '  maxconn 4000', 'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '  option http-keep-alive'];
  // The receiving side: TLS 1.3 bind that requires a client certificate from our CA.
  const h2cfg = join(dir, 'h2.cfg');
  writeFileSync(
    h2cfg,
    [
      ...common,
      'frontend mtls_in',
      `  bind 127.0.0.1:${tlsPort} ssl crt ${bPem} ca-file ${caPem} verify required alpn http/1.1 ssl-min-ver TLSv1.3`,
      '  default_backend app',
      'backend app',
      '  http-reuse always',
      `  server app ${env.upstream.host}:${env.upstream.port} pool-max-conn 256`,
      '',
    ].join('\n'),
  );
  // The calling side: plaintext in, TLS 1.3 out with our certificate, the server's verified.
  const h1cfg = join(dir, 'h1.cfg');
  writeFileSync(
    h1cfg,
    [
      ...common,
      'frontend bench',
      `  bind 127.0.0.1:${frontPort}`,
      '  default_backend mtls_out',
      'backend mtls_out',
      '  http-reuse always',
      `  server b 127.0.0.1:${tlsPort} ssl crt ${aPem} ca-file ${caPem} verify required alpn http/1.1 ssl-min-ver TLSv1.3 pool-max-conn 256`,
      '',
    ].join('\n'),
  );
  const h2 = await runHaproxy(mkdtempSync(joinDir(env, 'h2-')), h2cfg, tlsPort, env.netns);
  try {
    const h1 = await runHaproxy(mkdtempSync(joinDir(env, 'h1-')), h1cfg, frontPort, env.netns);
    await probe('haproxy-mtls', env, tlsPort, c.a, log);
    return {
      target: { transport: { tcp: { host: '127.0.0.1', port: frontPort } }, shape: 'origin', authority: 'bench', ...(env.netns ? { netns: env.netns } : {}) },
      proxyPid: h1.pid,
      teardown: async () => {
        await h1.stop();
        await h2.stop();
      },
    };
  } catch (e) {
    await h2.stop();
    throw e;
  }
}

export function mtlsModes(needsHaproxy: () => string | null): Mode[] {
  return [
    { name: 'mtls', title: 'explicit → mTLS → inbound → app', group: 'explicit', unavailable: () => null, setup: sidecarMtls },
    { name: 'haproxy-mtls', title: 'HAProxy → TLS (verified both ways) → HAProxy → app (reference)', group: 'reference', unavailable: needsHaproxy, setup: haproxyMtls },
  ];
}
