// The few lines of code for explicit mode: `meshFetch('http://users/x')` sends the request
// to the sidecar named by DREAMMESH_OUTBOUND (host:port or unix:/path), with Host: users.
// Only the connection is redirected; URL, method, headers and body stay the app's own.
// undici is an optional dependency (a sidecar installed with --omit=optional does not need it),
// loaded on first use.
import type { Agent, RequestInit, Response } from 'undici';
import { requireOptional } from '../core/optional-dependency.js';

const undici = (): typeof import('undici') => requireOptional<typeof import('undici')>('undici', 'dreammesh/client');

export const OUTBOUND_ENV = 'DREAMMESH_OUTBOUND';
const DEFAULT_OUTBOUND = '127.0.0.1:15001';

/** A dispatcher that connects every http:// request to the sidecar, keeping the URL's Host. */
export function meshDispatcher(outbound = process.env[OUTBOUND_ENV] ?? DEFAULT_OUTBOUND): Agent {
  const u = undici();
  if (outbound.startsWith('unix:')) return new u.Agent({ connect: { socketPath: outbound.slice(5) } });
  const i = outbound.lastIndexOf(':');
  const host = outbound.slice(0, i).replace(/^\[|\]$/g, '');
  const port = outbound.slice(i + 1);
  if (i <= 0 || !/^\d+$/.test(port)) throw new Error(`${OUTBOUND_ENV}="${outbound}" is not host:port or unix:/path`);
  const connector = u.buildConnector({});
  return new u.Agent({
    connect: (opts, callback) => connector({ ...opts, hostname: host, host: `${host}:${port}`, port, protocol: 'http:' }, callback),
  });
}

let shared: Agent | undefined;

/** fetch() through the mesh for http:// URLs; other schemes are fetched directly. Every failure
 * (a bad URL, DREAMMESH_OUTBOUND, undici not installed) is a rejection, as with fetch(). */
export async function meshFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  const url = typeof input === 'string' ? new URL(input) : input;
  if (url.protocol !== 'http:') return undici().fetch(url, init);
  shared ??= meshDispatcher();
  return undici().fetch(url, { ...init, dispatcher: shared });
}
