// Starts real sidecars for tests: in-process (fast, for most integration tests) or as a
// child process running `dreammesh run` (for signals, CLI behaviour, network namespaces).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { parseConfigObject } from '../../src/config/load.js';
import { Sidecar } from '../../src/sidecar.js';
import { formatListenAddress, type ListenAddress } from '../../src/core/address.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface RunningSidecar {
  readonly sidecar: Sidecar;
  /** "127.0.0.1:port" (or unix:/path) of each listener. */
  readonly outbound: string;
  /** "off" when the config has no app. */
  readonly inbound: string;
  readonly admin: string;
  /** Base URL of the admin API. */
  readonly adminUrl: string;
  stop(): Promise<void>;
}

const TEST_DEFAULTS = {
  listeners: { outbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
  accessLog: { enabled: false },
  logLevel: 'silent',
};

/** Port 0 everywhere; an inbound listener (on loopback) only for a config with an app. */
export function withDefaults(cfg: Record<string, unknown>): Record<string, unknown> {
  const inbound = cfg.app !== undefined ? { inbound: '127.0.0.1:0' } : {};
  const listeners = { ...TEST_DEFAULTS.listeners, ...inbound, ...((cfg.listeners as object | undefined) ?? {}) };
  return { ...TEST_DEFAULTS, ...cfg, listeners };
}

export async function startSidecar(cfg: Record<string, unknown>): Promise<RunningSidecar> {
  const config = parseConfigObject(withDefaults(cfg), 'test config');
  const sidecar = new Sidecar(config, { log: pino({ level: 'silent' }) });
  const b = await sidecar.start();
  const fmt = (a: ListenAddress): string => formatListenAddress(a);
  return {
    sidecar,
    outbound: fmt(b.outbound),
    inbound: b.inbound === undefined ? 'off' : fmt(b.inbound),
    admin: fmt(b.admin),
    adminUrl: `http://${fmt(b.admin)}`,
    stop: () => sidecar.stop(1000),
  };
}

export interface SpawnedSidecar {
  readonly child: ChildProcess;
  readonly outbound: string;
  readonly inbound: string;
  readonly admin: string;
  readonly adminUrl: string;
  readonly configFile: string;
  /** Everything the process printed on stderr so far. */
  stderr(): string;
  stdout(): string;
  /**
   * Sends a signal that does not end the process (SIGHUP: reload). Unlike child.kill it leaves
   * `child.killed` false, so stop() still sends its SIGTERM.
   */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM (unless the test already sent one with child.kill), then waits for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Runs `dreammesh run` in a child process and waits until it reports its listeners. */
/** `cli` runs another build of the CLI (e.g. one installed from the packed tarball). */
/** `readable`: the config may be read by other uids (a sidecar started under setpriv). */
export async function spawnSidecar(cfg: Record<string, unknown>, opts: { prefix?: string[]; env?: NodeJS.ProcessEnv; cli?: string; readable?: boolean } = {}): Promise<SpawnedSidecar> {
  const dir = await mkdtemp(join(tmpdir(), 'dm-sidecar-'));
  const configFile = join(dir, 'mesh.yaml');
  await writeFile(configFile, stringify(withDefaults({ logLevel: 'warn', ...cfg })));
  if (opts.readable === true) await chmod(dir, 0o755);
  const [cmd, ...pre] = opts.prefix && opts.prefix.length > 0 ? [...opts.prefix, process.execPath] : [process.execPath];
  const child = spawn(cmd, [...pre, opts.cli ?? CLI, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let err = '';
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const bound = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecar did not start in 15 s:\n${err}`)), 15_000);
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /dreammesh: outbound (\S+)\s+inbound (\S+)(?: \(no app\))?\s+admin (\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code} before starting:\n${err}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  return {
    child,
    outbound: bound[1]!,
    inbound: bound[2]!,
    admin: bound[3]!,
    adminUrl: `http://${bound[3]!}`,
    configFile,
    stderr: () => err,
    stdout: () => out,
    signal: (sig) => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, sig);
    },
    stop: async () => {
      if (child.exitCode === null && !child.killed) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}
