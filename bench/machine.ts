// Facts about the machine a report was measured on, so figures are read in context.
import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem, hostname } from 'node:os';

function versionOf(cmd: string, args: readonly string[]): string | null {
  try {
    const out = execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    return out.toString().split('\n')[0]!.trim() || null;
  } catch (e) {
    const err = e as { code?: string; stdout?: Buffer; stderr?: Buffer };
    if (err.code === 'ENOENT') return null;
    // Some tools (wrk -v) print their version and exit non-zero.
    const text = `${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}`.split('\n')[0]!.trim();
    return text || null;
  }
}

export interface MachineFacts {
  readonly kernel: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly host: string;
  readonly tools: Record<string, string | null>;
}

export function machineFacts(): MachineFacts {
  const c = cpus();
  return {
    kernel: release(),
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    host: hostname(),
    tools: {
      wrk: versionOf('wrk', ['-v']),
      haproxy: versionOf('haproxy', ['-v']),
      iptables: versionOf('iptables', ['-V']),
      'iptables-legacy': versionOf('iptables-legacy', ['-V']),
      nft: versionOf('nft', ['-v']),
    },
  };
}
