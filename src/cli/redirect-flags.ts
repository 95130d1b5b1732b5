// Command-line flags shared by `dreammesh redirect` and `dreammesh explain`: the capture
// settings, layered over the config file's transparent.redirect section.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfigFile, parseConfigObject } from '../config/load.js';
import type { MeshConfig } from '../config/schema.js';
import { redirectSpec, type RedirectFlags, type RedirectSpec } from '../steering/rules/redirect-spec.js';

export const REDIRECT_OPTIONS = {
  config: { type: 'string', short: 'c' },
  backend: { type: 'string' },
  'proxy-uid': { type: 'string' },
  'proxy-gid': { type: 'string' },
  'outbound-port': { type: 'string' },
  'inbound-port': { type: 'string' },
  'include-outbound-cidrs': { type: 'string' },
  'exclude-outbound-cidrs': { type: 'string' },
  'exclude-outbound-ports': { type: 'string' },
  'include-inbound-ports': { type: 'string' },
  'exclude-inbound-ports': { type: 'string' },
  ipv6: { type: 'boolean' },
  'no-ipv6': { type: 'boolean' },
  'capture-dns': { type: 'boolean' },
  'no-capture-dns': { type: 'boolean' },
  'proxy-mark': { type: 'string' },
  'inbound-mode': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const REDIRECT_FLAGS_HELP = `  --config FILE                  mesh.yaml (default $DREAMMESH_CONFIG; flags override its transparent.redirect)
  --backend B                    auto | iptables | iptables-nft | iptables-legacy | nftables
  --proxy-uid U / --proxy-gid G  the sidecar's uid/gid: its traffic is never captured (one is required)
  --outbound-port P              redirect target for outbound (default: listeners.outbound port)
  --inbound-port P               redirect target for inbound (default: listeners.inbound port)
  --include-outbound-cidrs L     "*" or comma-separated CIDRs to capture ("" = none)
  --exclude-outbound-cidrs L     CIDRs never captured
  --exclude-outbound-ports L     destination ports never captured
  --include-inbound-ports L      "*" or local ports captured inbound ("" = none)
  --exclude-inbound-ports L      local ports never captured inbound
  --ipv6 / --no-ipv6             capture IPv6 too (ip6tables / ip6 rules)
  --capture-dns / --no-capture-dns
                                 redirect the app's DNS (UDP/TCP port 53) to dns.listen (needs dns.enabled)
  --proxy-mark M                 packets with this SO_MARK (set by the sidecar) are never captured (e.g. 0x539)
  --inbound-mode redirect|tproxy inbound capture by NAT REDIRECT (default) or TPROXY (mangle + policy routing)`;

export type RedirectValues = { [K in keyof typeof REDIRECT_OPTIONS]?: (typeof REDIRECT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

export async function loadConfigFor(values: { config?: string }): Promise<MeshConfig> {
  const file = values.config ?? process.env.DREAMMESH_CONFIG;
  return file !== undefined ? loadConfigFile(file) : parseConfigObject({}, 'defaults');
}

export function flagsFrom(v: RedirectValues): RedirectFlags {
  const f: RedirectFlags = {};
  if (v.backend !== undefined) f.backend = v.backend;
  if (v['proxy-uid'] !== undefined) f.proxyUid = v['proxy-uid'];
  if (v['proxy-gid'] !== undefined) f.proxyGid = v['proxy-gid'];
  if (v['outbound-port'] !== undefined) f.outboundPort = v['outbound-port'];
  if (v['inbound-port'] !== undefined) f.inboundPort = v['inbound-port'];
  if (v['include-outbound-cidrs'] !== undefined) f.includeOutboundCidrs = v['include-outbound-cidrs'];
  if (v['exclude-outbound-cidrs'] !== undefined) f.excludeOutboundCidrs = v['exclude-outbound-cidrs'];
  if (v['exclude-outbound-ports'] !== undefined) f.excludeOutboundPorts = v['exclude-outbound-ports'];
  if (v['include-inbound-ports'] !== undefined) f.includeInboundPorts = v['include-inbound-ports'];
  if (v['exclude-inbound-ports'] !== undefined) f.excludeInboundPorts = v['exclude-inbound-ports'];
  if (v.ipv6 === true) f.ipv6 = true;
  if (v['no-ipv6'] === true) f.ipv6 = false;
  if (v['capture-dns'] === true) f.captureDns = true;
  if (v['no-capture-dns'] === true) f.captureDns = false;
  if (v['proxy-mark'] !== undefined) f.proxyMark = v['proxy-mark'];
  if (v['inbound-mode'] !== undefined) f.inboundMode = v['inbound-mode'];
  return f;
}

export async function specFrom(values: RedirectValues): Promise<{ config: MeshConfig; spec: RedirectSpec }> {
  const config = await loadConfigFor(values);
  return { config, spec: redirectSpec(config, flagsFrom(values)) };
}

export function parse(argv: string[], extra: ParseArgsConfig['options'] = {}): ReturnType<typeof parseArgs> {
  return parseArgs({ args: argv, options: { ...REDIRECT_OPTIONS, ...extra }, allowPositionals: true, strict: true });
}
