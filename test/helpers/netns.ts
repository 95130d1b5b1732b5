// Network namespaces for e2e tests: a client namespace and a server namespace joined by a veth
// pair. Every kernel rule a test installs lives inside these namespaces, never in the
// machine's own; they are deleted (with every process inside) even when a test fails.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface NetnsPair {
  readonly client: string;
  readonly server: string;
  /** Addresses of the server side. */
  readonly serverIp: string;
  readonly serverIp2: string;
  readonly clientIp: string;
  /** IPv6 addresses of the two sides (fd00::/8, no duplicate address detection). */
  readonly serverIp6: string;
  readonly clientIp6: string;
  /** Runs a command inside a namespace; returns stdout (throws on non-zero exit). */
  sh(ns: string, cmd: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): string;
  /** Like sh but never throws: { status, stdout, stderr }. */
  try(ns: string, cmd: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): { status: number; stdout: string; stderr: string };
  destroy(): void;
}

export function whyNoNetns(): string | null {
  if (process.getuid?.() !== 0) return 'e2e tests need root (network namespaces and iptables/nftables); run as root to include them';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'e2e tests need iproute2 (`ip`); run scripts/setup-system.sh';
  }
  return null;
}

function run(cmd: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(cmd[0]!, cmd.slice(1), { input: opts.input ?? '', env: opts.env ?? process.env, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    return { status: x.status ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
  }
}

const live = new Set<string>();
process.once('exit', () => {
  for (const ns of live) deleteNs(ns);
});

function deleteNs(ns: string): void {
  const pids = run(['ip', 'netns', 'pids', ns])
    .stdout.split('\n')
    .filter((p) => /^\d+$/.test(p));
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  run(['ip', 'netns', 'del', ns]);
  live.delete(ns);
}

/** Creates the pair: client 10.<n>.0.1/24 — server 10.<n>.0.2/24 and .3/24, loopback up in both. */
export function createNetnsPair(tag: string): NetnsPair {
  const id = `${tag}${process.pid % 100000}`;
  const client = `dmc-${id}`;
  const server = `dms-${id}`;
  const n = 100 + (process.pid % 100);
  const serverIp = `10.${n}.0.2`;
  const serverIp2 = `10.${n}.0.3`;
  const clientIp = `10.${n}.0.1`;
  const serverIp6 = `fd77:${n}::2`;
  const clientIp6 = `fd77:${n}::1`;
  const must = (cmd: string[]): string => {
    const r = run(cmd);
    if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const pair: NetnsPair = {
    client,
    server,
    serverIp,
    serverIp2,
    clientIp,
    serverIp6,
    clientIp6,
    sh: (ns, cmd, opts) => {
      const r = run(['ip', 'netns', 'exec', ns, ...cmd], opts);
      if (r.status !== 0) throw new Error(`[${ns}] ${cmd.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
      return r.stdout;
    },
    try: (ns, cmd, opts) => run(['ip', 'netns', 'exec', ns, ...cmd], opts),
    destroy: () => {
      deleteNs(client);
      deleteNs(server);
    },
  };
  try {
    for (const ns of [client, server]) {
      deleteNs(ns);
      must(['ip', 'netns', 'add', ns]);
      live.add(ns);
      must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    must(['ip', 'link', 'add', `vc-${id}`.slice(0, 15), 'netns', client, 'type', 'veth', 'peer', 'name', `vs-${id}`.slice(0, 15), 'netns', server]);
    must(['ip', '-n', client, 'addr', 'add', `${clientIp}/24`, 'dev', `vc-${id}`.slice(0, 15)]);
    must(['ip', '-n', server, 'addr', 'add', `${serverIp}/24`, 'dev', `vs-${id}`.slice(0, 15)]);
    must(['ip', '-n', server, 'addr', 'add', `${serverIp2}/24`, 'dev', `vs-${id}`.slice(0, 15)]);
    must(['ip', '-n', client, 'addr', 'add', `${clientIp6}/64`, 'dev', `vc-${id}`.slice(0, 15), 'nodad']);
    must(['ip', '-n', server, 'addr', 'add', `${serverIp6}/64`, 'dev', `vs-${id}`.slice(0, 15), 'nodad']);
    must(['ip', '-n', client, 'link', 'set', `vc-${id}`.slice(0, 15), 'up']);
    must(['ip', '-n', server, 'link', 'set', `vs-${id}`.slice(0, 15), 'up']);
  } catch (e) {
    pair.destroy();
    throw e;
  }
  return pair;
}

export const SERVERS_SCRIPT = fileURLToPath(new URL('./netns-servers.js', import.meta.url));

/** Starts test/helpers/netns-servers in a namespace; resolves once they all listen. */
export function startServers(ns: string): Promise<ChildProcess> {
  return startInNetns(ns, SERVERS_SCRIPT, [], 'servers');
}

/** Runs a Node script in a namespace; resolves once it prints "ready". */
export function startInNetns(ns: string, script: string, args: string[], what: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), 10_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited ${code}: ${out}`));
    });
  });
}
