// What a reload may change while the sidecar runs, and what only a restart can: the registry
// backends (a file watch, an etcd session and lease), transparent capture (rules installed
// at start, the native addon), this instance's identity in etcd (service, instance, and
// the inbound address peers were told), the DNS server (its sockets and virtual IPs), and mTLS
// (the identity files are watched, so a rotation needs no reload; the mode was announced to
// peers). Those sections keep their running value, so /config always shows what is in force,
// and the reload names them.
import type { MeshConfig } from './schema.js';

const RESTART_ONLY = ['registry', 'transparent', 'service', 'instance', 'dns', 'mtls'] as const;

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function restartOnly(prev: MeshConfig, next: MeshConfig, state: { registered: boolean }): { config: MeshConfig; kept: string[] } {
  const kept: string[] = [];
  const merged: Record<string, unknown> = { ...next };
  for (const key of RESTART_ONLY) {
    if (sameJson(prev[key], next[key])) continue;
    kept.push(key);
    if (prev[key] === undefined) delete merged[key];
    else merged[key] = prev[key];
  }
  let listeners = next.listeners;
  // Peers reach a registered instance at the address it announced: moving it needs a restart.
  if (state.registered && next.listeners.inbound !== prev.listeners.inbound) {
    kept.push('listeners.inbound');
    listeners = { ...next.listeners, ...(prev.listeners.inbound !== undefined ? { inbound: prev.listeners.inbound } : {}) };
  }
  // An inbound listener needs an app; keeping the old inbound address keeps the old app too.
  const app = state.registered && kept.includes('listeners.inbound') ? prev.app : next.app;
  return { config: Object.freeze({ ...merged, listeners: Object.freeze(listeners), ...(app !== undefined ? { app } : {}) }) as MeshConfig, kept };
}
