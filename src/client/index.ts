// The few lines of code for explicit mode: `meshFetch('http://users/x')` sends the request
// to the sidecar named by DREAMMESH_OUTBOUND (host:port or unix:/path), with Host: users.
// Only the connection is redirected; URL, method, headers and body stay the app's own.
import { Agent, buildConnector, fetch as undiciFetch, type RequestInit, type Response } from 'undici';

export const OUTBOUND_ENV = 'DREAMMESH_OUTBOUND';
const DEFAULT_OUTBOUND = '127.0.0.1:15001';

/** A dispatcher that connects every http:// request to the sidecar, keeping the URL's Host. */
export function meshDispatcher(outbound = process.env[OUTBOUND_ENV] ?? DEFAULT_OUTBOUND): Agent {
  if (outbound.startsWith('unix:')) return new Agent({ connect: { socketPath: outbound.slice(5) } });
  const i = outbound.lastIndexOf(':');
  const host = outbound.slice(0, i).replace(/^\[|\]$/g, '');
  const port = outbound.slice(i + 1);
  if (i <= 0 || !/^\d+$/.test(port)) throw new Error(`${OUTBOUND_ENV}="${outbound}" is not host:port or unix:/path`);
  const connector = buildConnector({});
  return new Agent({
    connect: (opts, callback) => connector({ ...opts, hostname: host, host: `${host}:${port}`, port, protocol: 'http:' }, callback),
  });
}

let shared: Agent | undefined;

/** fetch() through the mesh for http:// URLs; other schemes are fetched directly. */
export function meshFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  const url = typeof input === 'string' ? new URL(input) : input;
  if (url.protocol !== 'http:') return undiciFetch(url, init);
  shared ??= meshDispatcher();
  return undiciFetch(url, { ...init, dispatcher: shared });
}
