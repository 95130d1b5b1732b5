// Binds a server to "host:port" or "unix:/path". A leftover socket file from a crashed
// sidecar is removed (nobody answers on it); a live one is an error, as is a non-socket file.
import { connect, type Server } from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { MeshError } from '../core/errors.js';
import { closeFd, transparentListenFd } from '../steering/socket-options.js';
import { parseListenAddress, formatHostPort, type ListenAddress } from '../core/address.js';

export async function listen(server: Server, address: string, name: string, opts: { transparent?: boolean } = {}): Promise<ListenAddress> {
  const a = parseListenAddress(address);
  if (a === null) throw new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.${name}: "${address}" is not host:port or unix:/path`);
  if (a.kind === 'unix') await clearStaleSocket(a.path, name);
  // TPROXY delivers connections whose local address is the client's original destination:
  // only a socket with IP_TRANSPARENT may accept them, and Node cannot set it, so the socket
  // is made (and bound) natively and handed over.
  let fd: number | undefined;
  if (opts.transparent === true) {
    if (a.kind === 'unix') throw new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.${name}: inboundMode tproxy needs a TCP address, not ${address}`);
    try {
      fd = transparentListenFd(a.host, a.port);
    } catch (e) {
      if (e instanceof MeshError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new MeshError(
        'MESH_ERR_CONFIG_INVALID',
        `listeners.${name}: cannot open ${address} with IP_TRANSPARENT (transparent.redirect.inboundMode: tproxy): ${code ?? (e as Error).message}${code === 'EPERM' ? ' (needs CAP_NET_ADMIN: run as root or grant the capability)' : ''}`,
        { cause: e },
      );
    }
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      if (fd !== undefined) closeFd(fd);
      reject(new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.${name}: cannot listen on ${address}: ${e.code ?? e.message}`, { cause: e }));
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (fd !== undefined) server.listen({ fd, backlog: 1024 }, done);
    else if (a.kind === 'unix') server.listen({ path: a.path, backlog: 1024 }, done);
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
