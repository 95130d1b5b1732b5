// Transparent mode: the original destination of a redirected socket (SO_ORIGINAL_DST /
// IP6T_SO_ORIGINAL_DST), read through the small N-API addon in native/. The addon is looked
// up once: $DREAMMESH_NATIVE_ADDON if set, else native/build/Release/original_dst.node in the
// package. Without it, transparent mode refuses to start (MESH_ERR_NATIVE_MISSING); every
// other mode works as before.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import type { HostPort } from '../core/sidecar-context.js';

interface Addon {
  originalDst(fd: number): { host: string; port: number; family: number } | null;
  /** Socket options (socket_options.cc); absent in an addon built before them. */
  tcpSocket?(family: 4 | 6, mark: number, transparent: boolean): number;
  transparentListener?(host: string, port: number): number;
  socketMark?(fd: number): number;
  setSocketMark?(fd: number, mark: number): void;
  closeFd?(fd: number): void;
}

const DEFAULT_PATH = fileURLToPath(new URL('../../../native/build/Release/original_dst.node', import.meta.url));

let addon: Addon | null | undefined;
let loadError = '';

/** Where the addon is looked for (env override first). */
export function addonPath(): string {
  return process.env.DREAMMESH_NATIVE_ADDON || DEFAULT_PATH;
}

function load(): Addon | null {
  if (addon !== undefined) return addon;
  const path = addonPath();
  try {
    if (!existsSync(path)) throw new Error(`${path} does not exist`);
    const mod = createRequire(import.meta.url)(path) as Partial<Addon>;
    if (typeof mod.originalDst !== 'function') throw new Error(`${path} does not export originalDst`);
    addon = mod as Addon;
  } catch (e) {
    loadError = (e as Error).message;
    addon = null;
  }
  return addon;
}

/** The loaded addon (null when missing), for socket-options.ts. */
export function nativeAddon(): Addon | null {
  return load();
}

/** True when the native addon is available and transparent mode can work. */
export function originalDstAvailable(): boolean {
  return load() !== null;
}

/** Why the addon could not be loaded ('' when it loaded). */
export function originalDstLoadError(): string {
  load();
  return loadError;
}

/** The original destination, or null when the socket was not redirected (or has no fd). */
export function originalDestination(socket: Socket): HostPort | null {
  const a = load();
  if (a === null) return null;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  const r = a.originalDst(fd);
  if (r === null) return null;
  // An IPv4-mapped local address on a dual-stack listener compares as the plain IPv4 form.
  return { host: r.host, port: r.port };
}
