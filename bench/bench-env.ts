// What every bench row shares: the upstream, the sidecar config it is measured with, and the
// clean-ups to run even when the run is interrupted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Registry size every DreamMesh row carries, so RSS is measured with a realistic mesh. */
export const EXTRA_SERVICES = 1000;

export interface BenchEnv {
  /** The upstream on loopback, as host:port. */
  readonly upstream: { readonly host: string; readonly port: number };
  /** A scratch directory for sockets and configs, removed at the end. */
  readonly dir: string;
  /** Namespace the sidecar, HAProxy and the load generator run in (root runs only). */
  readonly netns?: string;
  /** Namespace of the upstream (root runs only): inbound-capture rows put their sidecar there. */
  readonly serverNetns?: string;
}

/** A sidecar config that routes `bench` to the upstream, with 1,000 other services around it. */
export function sidecarConfig(upstream: string, outbound: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const services: Record<string, unknown> = { bench: { endpoints: [upstream] } };
  for (let i = 0; i < EXTRA_SERVICES; i++) {
    const a = 10 + (i >> 8);
    const b = i & 255;
    services[`svc-${String(i).padStart(4, '0')}`] = { endpoints: [`10.${a}.${b}.1:8080`, `10.${a}.${b}.2:8080`] };
  }
  return {
    listeners: { outbound, admin: '127.0.0.1:0' },
    accessLog: { enabled: false },
    logLevel: 'warn',
    egress: { policy: 'allow-any' },
    services,
    ...extra,
  };
}

export function scratchDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'dm-bench-run-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function joinDir(env: BenchEnv, name: string): string {
  return join(env.dir, name);
}
