// As root, every row runs between two network namespaces joined by a veth pair: the app
// side (load generator, sidecar, HAProxy) and the server side (upstream). Transparent rows
// need this (capture rules must never touch the machine's own namespace), and the other
// rows cross the same veth so that all ratios compare like with like.
import { execFileSync } from 'node:child_process';

export interface Topology {
  /** Namespace of the app, the sidecar and the load generator. */
  readonly client: string;
  /** Namespace of the upstream. */
  readonly server: string;
  readonly clientAddr: string;
  readonly serverAddr: string;
  remove(): void;
}

const PREFIX = 'dmb';

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

export function canUseNetns(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and capture rules)';
  try {
    ip(['netns', 'list']);
  } catch {
    return 'the ip command (Debian package iproute2) is missing';
  }
  return null;
}

/** Namespaces left by a bench that was killed (its pid is gone) are removed first. */
function removeStale(): void {
  for (const line of ip(['netns', 'list']).split('\n')) {
    const m = new RegExp(`^(${PREFIX}(\\d+)[cs])\\b`).exec(line);
    if (m === null) continue;
    let alive = true;
    try {
      process.kill(Number(m[2]), 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    // Processes of a bench that was killed may still run inside: stop them first.
    for (const pid of ip(['netns', 'pids', m[1]!])
      .split('\n')
      .filter((p) => p !== '')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    ip(['netns', 'del', m[1]!]);
  }
}

export function createTopology(): Topology {
  removeStale();
  const client = `${PREFIX}${process.pid}c`;
  const server = `${PREFIX}${process.pid}s`;
  const clientAddr = '10.213.0.1';
  const serverAddr = '10.213.0.2';
  const remove = (): void => {
    for (const ns of [client, server]) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  };
  try {
    ip(['netns', 'add', client]);
    ip(['netns', 'add', server]);
    ip(['link', 'add', `${client}v`, 'netns', client, 'type', 'veth', 'peer', 'name', `${server}v`, 'netns', server]);
    for (const [ns, dev, addr] of [
      [client, `${client}v`, clientAddr],
      [server, `${server}v`, serverAddr],
    ] as const) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
      // New-connection runs open tens of thousands of connections per row: reuse TIME_WAIT
      // ports, or later rows would measure port exhaustion left by earlier ones.
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=10000 65000'], { stdio: 'ignore' });
    }
  } catch (e) {
    remove();
    throw e;
  }
  return { client, server, clientAddr, serverAddr, remove };
}

/** argv prefixed to run inside a namespace. */
export function inNetns(ns: string | undefined, argv: readonly string[]): string[] {
  return ns === undefined ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
}
