// Splitting and checking the authority a request names (Host header, absolute URI,
// CONNECT target): "name", "name:port", "1.2.3.4:80", "[::1]:80".
import { MeshError } from '../core/errors.js';
import { canonicalHost } from '../core/canonical-address.js';

export interface Authority {
  /**
   * Lower-cased, without brackets or a trailing dot; an address in its canonical spelling
   * (127.1 and [::ffff:7f00:1] are 127.0.0.1), see canonical-address.ts.
   */
  readonly host: string;
  readonly port: number | undefined;
}

const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

export function parseAuthority(raw: string | undefined): Authority {
  if (raw === undefined || raw.length === 0) throw new MeshError('MESH_ERR_BAD_HOST', 'the request names no destination (missing Host header)');
  if (raw.length > 300) throw new MeshError('MESH_ERR_BAD_HOST', 'the Host is longer than 300 characters');
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d*))?$/.exec(raw);
  if (v6) {
    host = v6[1]!.toLowerCase();
    portText = v6[2];
  } else {
    const i = raw.lastIndexOf(':');
    host = (i === -1 ? raw : raw.slice(0, i)).toLowerCase();
    portText = i === -1 ? undefined : raw.slice(i + 1);
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!HOSTNAME.test(host)) throw new MeshError('MESH_ERR_BAD_HOST', `"${raw.slice(0, 100)}" is not a valid host name or address`);
  }
  const canonical = canonicalHost(host);
  if (canonical === null) throw new MeshError('MESH_ERR_BAD_HOST', `"${raw.slice(0, 100)}" is not a valid address`);
  host = canonical;
  let port: number | undefined;
  if (portText !== undefined && portText !== '') {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535 || Number(portText) === 0) {
      throw new MeshError('MESH_ERR_BAD_HOST', `"${raw.slice(0, 100)}" has an invalid port`);
    }
    port = Number(portText);
  }
  return { host, port };
}
