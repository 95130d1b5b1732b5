// Binds a server to "host:port" or "unix:/path". A leftover socket file from a crashed
// sidecar is removed (nobody answers on it); a live one is an error, as is a non-socket file.
import { connect, type Server } from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { MeshError } from '../core/errors.js';
import { parseListenAddress, formatHostPort, type ListenAddress } from '../core/address.js';

export async function listen(server: Server, address: string, name: string): Promise<ListenAddress> {
  const a = parseListenAddress(address);
  if (a === null) throw new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.${name}: "${address}" is not host:port or unix:/path`);
  if (a.kind === 'unix') await clearStaleSocket(a.path, name);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.${name}: cannot listen on ${address}: ${e.code ?? e.message}`, { cause: e }));
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (a.kind === 'unix') server.listen({ path: a.path, backlog: 1024 }, done);
    else server.listen({ host: a.host, port: a.port, backlog: 1024 }, done);
  });
  if (a.kind === 'unix') return a;
  const bound = server.address();
  if (bound === null || typeof bound === 'string') return a;
  return { kind: 'tcp', host: bound.address, port: bound.port };
}

async function clearStaleSocket(path: string, name: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.${name}: ${path} exists and is not a socket; refusing to remove it`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.${name}: another process is listening on ${path}`);
  await unlink(path);
}

export function describeBound(a: ListenAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : formatHostPort(a.host, a.port);
}
