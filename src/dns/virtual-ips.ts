// One stable virtual IP (VIP) per mesh service, from dns.cidr. The first choice is a hash of
// the service name (so two sidecars usually agree), linear probing on a collision; once given,
// an address stays with its service for good — also while the service is absent from the
// registry — and the map survives restarts in a state file written atomically. A different
// cidr at start discards the old map (logged): its addresses would be outside the range.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { MeshError } from '../core/errors.js';
import { canonicalHost } from '../core/canonical-address.js';
import { parseCidr, v4ToInt, type Cidr } from '../steering/rules/redirect-spec.js';

const FORMAT = 'dreammesh-dns-vips/1';

interface VipFile {
  readonly format: typeof FORMAT;
  readonly cidr: string;
  /** service → IPv4 VIP */
  readonly services: Record<string, string>;
}

/** Where the map lives unless dns.stateFile says otherwise (same directory as the etcd cache). */
export function defaultVipFile(): string {
  const dir = process.env.DREAMMESH_STATE_DIR ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'dreammesh');
  return join(dir, 'dns-vips.json');
}

function intToV4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** IPv4 range of VIPs; throws MESH_ERR_CONFIG_INVALID naming the field. */
export function vipRange(cidr: string): Cidr {
  let c: Cidr;
  try {
    c = parseCidr(cidr, 'dns.cidr');
  } catch (e) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', (e as Error).message);
  }
  if (c.family !== 4) throw new MeshError('MESH_ERR_CONFIG_INVALID', `dns.cidr: ${cidr} is not an IPv4 range (IPv6 VIPs come from dns.ipv6Cidr)`);
  if (c.prefix > 30) throw new MeshError('MESH_ERR_CONFIG_INVALID', `dns.cidr: ${cidr} is too small (at most /30)`);
  return c;
}

/** IPv6 range for AAAA answers; at most /64 of host bits are used (offsets come from the IPv4 range). */
export function vipRange6(cidr: string): { base: bigint; prefix: number } {
  let c: Cidr;
  try {
    c = parseCidr(cidr, 'dns.ipv6Cidr');
  } catch (e) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', (e as Error).message);
  }
  if (c.family !== 6) throw new MeshError('MESH_ERR_CONFIG_INVALID', `dns.ipv6Cidr: ${cidr} is not an IPv6 range`);
  if (c.prefix < 64 || c.prefix > 120) throw new MeshError('MESH_ERR_CONFIG_INVALID', `dns.ipv6Cidr: ${cidr}: the prefix must be between /64 and /120`);
  const base = v6ToBig(canonicalHost(c.address) ?? c.address);
  const shift = BigInt(128 - c.prefix);
  return { base: (base >> shift) << shift, prefix: c.prefix };
}

function v6ToBig(addr: string): bigint {
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

function bigToV6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return canonicalHost(groups.join(':')) ?? groups.join(':');
}

export interface VirtualIpsOptions {
  readonly cidr: string;
  readonly ipv6Cidr?: string | undefined;
  /** null: keep the map in memory only (tests). */
  readonly file: string | null;
  /** Read the file but never write it (`dreammesh explain`: the running sidecar owns it). */
  readonly readOnly?: boolean;
  readonly log: Logger;
}

export class VirtualIps {
  private readonly range: Cidr;
  private readonly range6: { base: bigint; prefix: number } | undefined;
  private readonly base: number;
  /** Usable offsets: 1 .. size-2 (the first and last address of the range are never handed out). */
  private readonly size: number;
  private readonly byService = new Map<string, number>();
  private readonly byOffset = new Map<number, string>();

  constructor(private readonly opts: VirtualIpsOptions) {
    this.range = vipRange(opts.cidr);
    this.range6 = opts.ipv6Cidr === undefined ? undefined : vipRange6(opts.ipv6Cidr);
    this.base = v4ToInt(this.range.address);
    this.size = 2 ** (32 - this.range.prefix);
    this.load();
  }

  get count(): number {
    return this.byService.size;
  }

  /** The map as written to the state file (for explain and /config-like views). */
  entries(): [string, string][] {
    return [...this.byService.entries()].map(([s, o]) => [s, intToV4((this.base + o) >>> 0)]);
  }

  private load(): void {
    if (this.opts.file === null) return;
    let text: string;
    try {
      text = readFileSync(this.opts.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log.warn({ file: this.opts.file, error: String(e) }, 'cannot read the virtual IP map: starting a new one');
      return;
    }
    let f: VipFile;
    try {
      f = JSON.parse(text) as VipFile;
      if (f.format !== FORMAT || typeof f.services !== 'object' || f.services === null) throw new Error('not a virtual IP map');
    } catch (e) {
      this.opts.log.warn({ file: this.opts.file, error: (e as Error).message }, 'the virtual IP map is unreadable: starting a new one');
      return;
    }
    if (f.cidr !== this.range.text) {
      this.opts.log.warn({ file: this.opts.file, was: f.cidr, now: this.range.text, services: Object.keys(f.services).length }, 'dns.cidr changed: every service gets a new virtual IP');
      return;
    }
    for (const [service, ip] of Object.entries(f.services)) {
      const off = (v4ToInt(ip) - this.base) >>> 0;
      if (typeof ip !== 'string' || off < 1 || off > this.size - 2 || this.byOffset.has(off)) continue;
      this.byService.set(service, off);
      this.byOffset.set(off, service);
    }
  }

  /**
   * Gives every service in `services` an address (those that have one keep it); returns the
   * services that could not get one (range full). Writes the map when it changed.
   */
  assign(services: Iterable<string>): string[] {
    let changed = false;
    const full: string[] = [];
    for (const s of services) {
      if (this.byService.has(s)) continue;
      const off = this.free(s);
      if (off === undefined) {
        full.push(s);
        continue;
      }
      this.byService.set(s, off);
      this.byOffset.set(off, s);
      changed = true;
    }
    if (changed) this.save();
    if (full.length > 0) this.opts.log.error({ cidr: this.range.text, services: full.slice(0, 20) }, 'dns.cidr has no free virtual IP left for these services (use a larger range)');
    return full;
  }

  private free(service: string): number | undefined {
    const usable = this.size - 2;
    if (this.byOffset.size >= usable) return undefined;
    const h = createHash('sha256').update(service).digest().readUInt32BE(0);
    let off = 1 + (h % usable);
    for (let i = 0; i < usable; i++) {
      if (!this.byOffset.has(off)) return off;
      off = off >= usable ? 1 : off + 1;
    }
    return undefined;
  }

  private save(): void {
    const file = this.opts.file;
    if (file === null || this.opts.readOnly === true) return;
    const body: VipFile = { format: FORMAT, cidr: this.range.text, services: Object.fromEntries(this.entries()) };
    try {
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(body, null, 1) + '\n');
      renameSync(tmp, file);
    } catch (e) {
      // The addresses stay valid for this run; only the next start may choose differently.
      this.opts.log.warn({ file, error: String(e) }, 'cannot write the virtual IP map');
    }
  }

  /** The file the map is kept in (null: memory only). */
  get file(): string | null {
    return this.opts.file;
  }

  v4(service: string): string | undefined {
    const off = this.byService.get(service);
    return off === undefined ? undefined : intToV4((this.base + off) >>> 0);
  }

  /** Undefined when dns.ipv6Cidr is not set. */
  v6(service: string): string | undefined {
    const off = this.byService.get(service);
    if (off === undefined || this.range6 === undefined) return undefined;
    const span = 2n ** BigInt(128 - this.range6.prefix);
    return bigToV6(this.range6.base + (BigInt(off) % span));
  }

  /** True when `ip` is an IPv4 address inside dns.cidr. */
  inRange(ip: string): boolean {
    const h = canonicalHost(ip.toLowerCase()) ?? ip;
    return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) && (v4ToInt(h) - this.base) >>> 0 < this.size;
  }

  /** The service a VIP (IPv4, IPv4-mapped IPv6 or an address of ipv6Cidr) belongs to. */
  service(ip: string): string | undefined {
    const h = canonicalHost(ip.toLowerCase()) ?? ip;
    if (h.includes(':')) {
      if (this.range6 === undefined) return undefined;
      let n: bigint;
      try {
        n = v6ToBig(h);
      } catch {
        return undefined;
      }
      const shift = BigInt(128 - this.range6.prefix);
      if (n >> shift !== this.range6.base >> shift) return undefined;
      return this.byOffset.get(Number(n - this.range6.base));
    }
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(h)) return undefined;
    const off = (v4ToInt(h) - this.base) >>> 0;
    return off < this.size ? this.byOffset.get(off) : undefined;
  }
}
