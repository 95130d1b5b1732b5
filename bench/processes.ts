// The processes a bench row needs: the upstream service, a DreamMesh sidecar (`dreammesh
// run`, as a user would start it) and HAProxy as the reference sidecar. Each is a child
// process with a pid (for CPU and RSS) and a stop().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { inNetns } from './topology.js';
import { createServer, connect } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const UPSTREAM = fileURLToPath(new URL('./upstream-server.js', import.meta.url));

export interface BenchProcess {
  readonly pid: number;
  stop(): Promise<void>;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen({ host, port: 0 }, resolve);
  });
  const a = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  if (a === null || typeof a === 'string') throw new Error('no port');
  return a.port;
}

function stopper(child: ChildProcess, cleanup?: () => void): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    cleanup?.();
  };
}

/** Spawns argv and waits until its output matches `ready`; rejects if it exits first. */
function spawnUntil(argv: readonly string[], ready: RegExp, what: string): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start in 15 s: ${out.slice(-500)}`));
    }, 15_000);
    const onData = (c: Buffer): void => {
      out += c.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${e.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${out.slice(-500)}`));
    });
  });
}

/** The bench upstream; `prefix` places it (e.g. `ip netns exec NS`). */
export async function startUpstream(host = '127.0.0.1', prefix: readonly string[] = []): Promise<BenchProcess & { port: number }> {
  const { child, match } = await spawnUntil([...prefix, process.execPath, UPSTREAM, host, '0'], /listening (\d+)/, 'bench upstream');
  child.stdout!.resume();
  child.stderr!.resume();
  return { pid: child.pid!, port: Number(match[1]), stop: stopper(child) };
}

export interface SidecarAddresses {
  readonly outbound: string;
}

/** `dreammesh run` with a generated config; resolves once it prints its listeners. */
export async function startSidecar(config: Record<string, unknown>, prefix: readonly string[] = []): Promise<BenchProcess & SidecarAddresses> {
  const dir = mkdtempSync(join(tmpdir(), 'dm-bench-'));
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, stringify(config));
  // The flag the installed `dreammesh` command runs with (see the first line of src/cli/main.ts).
  const argv = [...prefix, process.execPath, '--max-semi-space-size=4', CLI, 'run', '--config', file];
  try {
    const { child, match } = await spawnUntil(argv, /dreammesh: outbound (\S+)/, 'dreammesh sidecar');
    child.stdout!.resume();
    child.stderr!.resume();
    return { pid: child.pid!, outbound: match[1]!, stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Resolves once something accepts on 127.0.0.1:port (inside netns when given). */
async function waitForPort(port: number, netns: string | undefined, what: string, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const gone = exited();
    if (gone !== null) throw new Error(`${what} exited: ${gone}`);
    const ok =
      netns === undefined
        ? await new Promise<boolean>((resolve) => {
            const s = connect(port, '127.0.0.1');
            s.once('connect', () => (s.destroy(), resolve(true)));
            s.once('error', () => (s.destroy(), resolve(false)));
          })
        : spawnSync('ip', ['netns', 'exec', netns, 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { stdio: 'ignore' }).status === 0;
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on port ${port} in 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** HAProxy with one thread in http (or tcp) mode in front of the upstream. */
export async function startHaproxy(mode: 'http' | 'tcp', upstream: { host: string; port: number }, netns?: string): Promise<BenchProcess & { port: number }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dm-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  nbthread 1',
      '  maxconn 4000',
      'defaults',
      `  mode ${mode}`,
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      mode === 'http' ? '  option http-keep-alive' : '',
      'frontend bench',
      `  bind 127.0.0.1:${port}`,
      '  default_backend upstream',
      'backend upstream',
      // http-reuse always: idle server connections serve any client, as the sidecar's pool does.
      mode === 'http' ? '  http-reuse always' : '',
      `  server u1 ${upstream.host}:${upstream.port}` + (mode === 'http' ? ' pool-max-conn 256' : ''),
      '',
    ].join('\n'),
  );
  return runHaproxy(dir, cfg, port, netns);
}

/** Runs HAProxy on a config written in `dir` (removed at stop) and waits until `port` accepts. */
export async function runHaproxy(dir: string, cfg: string, port: number, netns?: string): Promise<BenchProcess & { port: number }> {
  const [cmd, ...args] = inNetns(netns, ['haproxy', '-f', cfg, '-db']);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  let spawnError: string | null = null;
  child.once('error', (e) => (spawnError = e.message));
  try {
    await waitForPort(port, netns, 'haproxy', () => spawnError ?? (child.exitCode !== null ? `code ${child.exitCode}: ${err.trim().split('\n').slice(-1)[0] ?? ''}` : null));
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { pid: child.pid!, port, stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })) };
}
