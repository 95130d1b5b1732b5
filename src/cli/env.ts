// `dreammesh env --mode explicit|proxy [--config FILE] [--format sh|dotenv|json]`: the
// environment an app needs to reach the mesh.
//   explicit → DREAMMESH_OUTBOUND (host:port or unix:/path; see src/client).
//   proxy    → HTTP_PROXY/HTTPS_PROXY (and lowercase twins), NO_PROXY/no_proxy (loopback
//              plus egress.bypass) and JAVA_TOOL_OPTIONS with the equivalent -D properties.
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import type { MeshConfig } from '../config/schema.js';
import { loadConfigFile, parseConfigObject } from '../config/load.js';
import { MeshError, isMeshError } from '../core/errors.js';
import { formatHostPort, parseListenAddress } from '../core/address.js';

export type EnvMode = 'explicit' | 'proxy';
export type EnvFormat = 'sh' | 'dotenv' | 'json';

/** Always bypassed: the sidecar itself and everything else on loopback. */
export const LOOPBACK_NO_PROXY = ['localhost', '127.0.0.1', '::1'] as const;

const USAGE = 'usage: dreammesh env --mode explicit|proxy [--config FILE] [--format sh|dotenv|json]';

/** The outbound listener as clients should dial it (a wildcard bind becomes loopback). */
function outboundFor(config: MeshConfig): { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } {
  const a = parseListenAddress(config.listeners.outbound);
  if (a === null) throw new MeshError('MESH_ERR_CONFIG_INVALID', `listeners.outbound: "${config.listeners.outbound}" is not host:port or unix:/path`);
  if (a.kind === 'unix') return a;
  if (a.port === 0) throw new MeshError('MESH_ERR_CONFIG_INVALID', 'listeners.outbound: port 0 is chosen at start; name a fixed port so apps can be told where the sidecar is');
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
  return { kind: 'tcp', host, port: a.port };
}

/** NO_PROXY entries: loopback first, then egress.bypass, without duplicates. */
export function noProxyList(config: MeshConfig): string[] {
  const out: string[] = [];
  for (const e of [...LOOPBACK_NO_PROXY, ...config.egress.bypass]) if (!out.includes(e)) out.push(e);
  return out;
}

/**
 * NO_PROXY entries in Java's http.nonProxyHosts syntax: `|`-separated, `*` wildcards at the
 * start or end. ".example.com" → "*.example.com"; octet-aligned IPv4 CIDRs become "10.*";
 * IPv6 addresses are bracketed. Java cannot express ports or other CIDRs: those are left out.
 */
export function javaNonProxyHosts(entries: readonly string[]): string {
  const out: string[] = [];
  for (const raw of entries) {
    let e = raw.trim();
    if (e === '*') {
      out.push('*');
      continue;
    }
    if (e.includes('/')) {
      const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(8|16|24|32)$/.exec(e);
      if (m === null) continue;
      const keep = Number(m[5]) / 8;
      e = keep === 4 ? m.slice(1, 5).join('.') : [...m.slice(1, 1 + keep), '*'].join('.');
      out.push(e);
      continue;
    }
    if (isIP(e) === 6) {
      out.push(`[${e}]`);
      continue;
    }
    const v6 = /^\[([0-9a-fA-F:.]+)\](?::\d+)?$/.exec(e);
    if (v6) {
      out.push(`[${v6[1]}]`);
      continue;
    }
    if (/:\d+$/.test(e)) continue; // host:port: Java has no per-port bypass
    if (e.startsWith('.')) e = '*' + e;
    if (!out.includes(e)) out.push(e);
  }
  return out.join('|');
}

/** The variables for one mode, in the order they are printed. */
export function meshEnv(config: MeshConfig, mode: EnvMode): [string, string][] {
  const out = outboundFor(config);
  if (mode === 'explicit') {
    return [['DREAMMESH_OUTBOUND', out.kind === 'unix' ? `unix:${out.path}` : formatHostPort(out.host, out.port)]];
  }
  if (out.kind === 'unix') {
    throw new MeshError('MESH_ERR_PROXY_NEEDS_TCP', `listeners.outbound is a Unix socket (unix:${out.path}); HTTP_PROXY and Java's proxy properties need host:port. Use --mode explicit, or a TCP outbound listener`);
  }
  const url = `http://${formatHostPort(out.host, out.port)}`;
  const noProxy = noProxyList(config).join(',');
  const javaHost = out.host;
  const java = [`-Dhttp.proxyHost=${javaHost}`, `-Dhttp.proxyPort=${out.port}`, `-Dhttps.proxyHost=${javaHost}`, `-Dhttps.proxyPort=${out.port}`, `-Dhttp.nonProxyHosts=${javaNonProxyHosts(noProxyList(config))}`].join(
    ' ',
  );
  return [
    ['HTTP_PROXY', url],
    ['HTTPS_PROXY', url],
    ['http_proxy', url],
    ['https_proxy', url],
    ['NO_PROXY', noProxy],
    ['no_proxy', noProxy],
    ['JAVA_TOOL_OPTIONS', java],
  ];
}

/** POSIX sh single quoting: safe for any byte except NUL. */
export function shQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

function dotenvQuote(v: string): string {
  if (/^[A-Za-z0-9_./:@%+,=-]*$/.test(v)) return v;
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\n/g, '\\n')}"`;
}

export function formatEnv(vars: [string, string][], format: EnvFormat): string {
  switch (format) {
    case 'sh':
      return vars.map(([k, v]) => `export ${k}=${shQuote(v)}\n`).join('');
    case 'dotenv':
      return vars.map(([k, v]) => `${k}=${dotenvQuote(v)}\n`).join('');
    case 'json':
      return JSON.stringify(Object.fromEntries(vars), null, 2) + '\n';
  }
}

export interface EnvArgs {
  readonly mode: EnvMode;
  readonly config: MeshConfig;
  readonly format: EnvFormat;
}

/** Parses --mode/--config/--format shared by `env` and `exec`; throws a usage message string. */
export async function parseEnvArgs(values: { mode?: string; config?: string; format?: string }): Promise<EnvArgs> {
  const mode = values.mode;
  if (mode !== 'explicit' && mode !== 'proxy') throw new UsageError(`--mode must be explicit or proxy${mode === undefined ? '' : ` (got "${mode}")`}`);
  const format = values.format ?? 'sh';
  if (format !== 'sh' && format !== 'dotenv' && format !== 'json') throw new UsageError(`--format must be sh, dotenv or json (got "${format}")`);
  const file = values.config ?? process.env.DREAMMESH_CONFIG;
  const config = file === undefined ? parseConfigObject({}, 'defaults') : await loadConfigFile(file);
  return { mode, config, format };
}

export class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${USAGE}\nPrints the environment an app needs to reach the mesh (see docs/forward-proxy.md).\n`);
    return 0;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { mode: { type: 'string', short: 'm' }, config: { type: 'string', short: 'c' }, format: { type: 'string', short: 'f' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`dreammesh env: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  try {
    const a = await parseEnvArgs(values);
    process.stdout.write(formatEnv(meshEnv(a.config, a.mode), a.format));
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`dreammesh env: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`dreammesh env: ${isMeshError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
}
