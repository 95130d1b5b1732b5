// Listener and endpoint addresses: "host:port", "[v6]:port" or "unix:/path".
import { isIP } from 'node:net';

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return null;
  return { host: m[1]!, port };
}

export function parseListenAddress(s: string): ListenAddress | null {
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    return path.length > 0 ? { kind: 'unix', path } : null;
  }
  const hp = parseHostPort(s);
  return hp ? { kind: 'tcp', ...hp } : null;
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function formatListenAddress(a: ListenAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : formatHostPort(a.host, a.port);
}
