// Socket options Node has no API for, through the native addon (native/socket_options.cc):
//   SO_MARK          on every upstream socket when transparent.redirect.proxyMark is set, so
//                    the capture rules skip the sidecar's own traffic whatever uid it runs as
//   IP_TRANSPARENT   on the inbound listener for TPROXY (inboundMode: tproxy), and on an
//                    upstream socket bound to a non-local address
// The option must be on the socket before its SYN, but Node opens the TCP fd lazily inside
// connect(); so the fd is created here (socket + setsockopt) and handed to Node.
import { Socket, connect, isIP, type LookupFunction, type OnReadOpts } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import type { Socket as UdpSocket } from 'node:dgram';
import { MeshError } from '../core/errors.js';
import { nativeAddon, originalDstLoadError } from './original-dst.js';
import type { MeshConfig } from '../config/schema.js';

interface SocketOptions {
  tcpSocket(family: 4 | 6, mark: number, transparent: boolean): number;
  transparentListener(host: string, port: number): number;
  socketMark(fd: number): number;
  setSocketMark(fd: number, mark: number): void;
  closeFd(fd: number): void;
}

function addon(): SocketOptions | null {
  const a = nativeAddon();
  if (a === null || typeof a.tcpSocket !== 'function' || typeof a.transparentListener !== 'function' || typeof a.socketMark !== 'function' || typeof a.setSocketMark !== 'function' || typeof a.closeFd !== 'function')
    return null;
  return a as unknown as SocketOptions;
}

/** True when the addon can set SO_MARK / IP_TRANSPARENT. */
export function socketOptionsAvailable(): boolean {
  return addon() !== null;
}

/** The addon's socket options, or MESH_ERR_NATIVE_MISSING naming the feature that needs them. */
export function requireSocketOptions(feature: string): SocketOptions {
  const a = addon();
  if (a !== null) return a;
  const why = originalDstLoadError() || 'the addon was built without socket options (rebuild it)';
  throw new MeshError(
    'MESH_ERR_NATIVE_MISSING',
    `${feature} needs the native addon's socket options, which are not available (${why}; run \`npm rebuild dreammesh\` (needs g++ and python3) or set DREAMMESH_NATIVE_ADDON)`,
  );
}

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  /** SO_MARK for the socket (undefined or 0 = a plain Node socket). */
  readonly mark?: number | undefined;
  readonly lookup?: LookupFunction | undefined;
  readonly noDelay?: boolean;
  readonly keepAlive?: boolean;
  readonly allowHalfOpen?: boolean;
  readonly onread?: OnReadOpts;
  /**
   * TPROXY original source: bind to this (non-local) address, the client's, with
   * IP_TRANSPARENT; `host` must then be an IP address of the same family.
   */
  readonly transparentSource?: string | undefined;
}

type WithHandle = Socket & { _handle?: { fd?: number; open?(fd: number): number } | null };

/**
 * Starts a TCP connection (as net.connect does) whose socket carries the mark from its SYN on.
 * An IP address gets a native fd handed to `new Socket({ fd })`; a host name is resolved first
 * and the fd of the resolved family is opened on the socket's handle before Node connects it.
 */
export function dialTcp(o: DialOptions): Socket {
  const base = { allowHalfOpen: o.allowHalfOpen ?? false, ...(o.onread !== undefined ? { onread: o.onread } : {}) };
  const conn = { host: o.host, port: o.port, ...(o.lookup !== undefined ? { lookup: o.lookup } : {}) };
  const source = o.transparentSource;
  if ((o.mark === undefined || o.mark === 0) && source === undefined) {
    return connect({ ...base, ...conn, noDelay: o.noDelay ?? false, keepAlive: o.keepAlive ?? false });
  }
  const a = requireSocketOptions(source !== undefined ? 'transparent.redirect.tproxyOriginalSource' : 'transparent.redirect.proxyMark');
  const mark = o.mark ?? 0;
  const fam = isIP(o.host);
  if (source !== undefined && (fam === 0 || isIP(source) !== fam)) throw new MeshError('MESH_ERR_INTERNAL', `original source ${source} cannot connect to ${o.host}`);
  let s: Socket;
  if (fam !== 0) {
    const fd = a.tcpSocket(fam as 4 | 6, mark, source !== undefined);
    try {
      s = new Socket({ fd, readable: true, writable: true, ...base });
    } catch (e) {
      a.closeFd(fd);
      throw e;
    }
    s.connect(source !== undefined ? { ...conn, localAddress: source } : conn);
  } else {
    const look: LookupFunction = o.lookup ?? dnsLookup;
    // One address, one handle: Node's happy-eyeballs would make handles of its own.
    s = new Socket(base);
    s.connect({
      ...conn,
      autoSelectFamily: false,
      lookup: (hostname, options, cb) =>
        look(hostname, { ...options, all: false }, (err, address, family) => {
          if (err === null && typeof address === 'string') {
            try {
              const fd = a.tcpSocket(family === 6 ? 6 : 4, mark, false);
              const h = (s as WithHandle)._handle;
              if (h?.open === undefined || h.open(fd) !== 0) {
                a.closeFd(fd);
                throw new Error('cannot attach the marked socket');
              }
            } catch (e) {
              cb(e as NodeJS.ErrnoException, '', 0);
              return;
            }
          }
          cb(err, address, family);
        }),
    });
  }
  if (o.noDelay === true) s.setNoDelay(true);
  if (o.keepAlive === true) s.setKeepAlive(true);
  return s;
}

/** SO_MARK of a connected socket (tests and `redirect verify`); null without the addon or fd. */
export function socketMark(socket: Socket): number | null {
  const a = addon();
  const fd = (socket as WithHandle)._handle?.fd;
  if (a === null || typeof fd !== 'number' || fd < 0) return null;
  return a.socketMark(fd);
}

/** SO_MARK on a bound UDP socket: every datagram it sends afterwards carries the mark. */
export function markDatagramSocket(socket: UdpSocket, mark: number): void {
  const fd = datagramFd(socket);
  if (typeof fd !== 'number' || fd < 0) throw new MeshError('MESH_ERR_INTERNAL', 'the UDP socket has no file descriptor to mark');
  requireSocketOptions('transparent.redirect.proxyMark').setSocketMark(fd, mark);
}

/**
 * dgram has no public fd; its handle sits in the socket's state (the `_handle` getter reads the
 * same thing but prints a deprecation warning).
 */
function datagramFd(socket: UdpSocket): number | undefined {
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as unknown as Record<symbol, { handle?: { fd?: number } } | undefined>)[sym];
    if (typeof state?.handle?.fd === 'number') return state.handle.fd;
  }
  return undefined;
}

/** A bound (not yet listening) IP_TRANSPARENT socket for server.listen({ fd }). */
export function transparentListenFd(host: string, port: number): number {
  return requireSocketOptions('transparent.redirect.inboundMode: tproxy').transparentListener(host, port);
}

export function closeFd(fd: number): void {
  addon()?.closeFd(fd);
}

/**
 * At start: a configured proxyMark (or TPROXY inbound) needs the addon and the privilege to set
 * the option (CAP_NET_ADMIN); finding out on the first upstream connection would be too late.
 */
export function checkSocketOptions(config: MeshConfig): void {
  const r = config.transparent.redirect;
  if (r.proxyMark === undefined) return;
  const a = requireSocketOptions('transparent.redirect.proxyMark');
  let fd: number;
  try {
    fd = a.tcpSocket(4, r.proxyMark, false);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MeshError(
      'MESH_ERR_CONFIG_INVALID',
      `transparent.redirect.proxyMark: cannot set SO_MARK (${code ?? (e as Error).message})${code === 'EPERM' ? ': the sidecar needs CAP_NET_ADMIN (e.g. setpriv --ambient-caps +net_admin, or AmbientCapabilities=CAP_NET_ADMIN)' : ''}`,
      { cause: e },
    );
  }
  a.closeFd(fd);
}
