// Forwards queries that are not for mesh names to real resolvers: dns.upstreams, else the
// nameservers of /etc/resolv.conf read at start. The query bytes go out unchanged (same id),
// over UDP first; a truncated (TC) UDP answer is retried over TCP when the client asked over
// TCP (a UDP client gets the TC answer and retries over TCP itself, as stub resolvers do).
// Each upstream gets dns.upstreamTimeoutMs; when every one fails the caller answers SERVFAIL.
// The sidecar's own sockets are excluded from DNS capture by the proxy uid/gid rules, or by
// the proxy mark, which each forwarding socket then carries (else they would be captured
// back to this listener when the sidecar runs as the app's uid).
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { dialTcp, markDatagramSocket } from '../steering/socket-options.js';
import { readFileSync } from 'node:fs';
import { MeshError } from '../core/errors.js';
import { parseHostPort } from '../core/address.js';

export interface Upstream {
  readonly host: string;
  readonly port: number;
}

/** `nameserver` lines of a resolv.conf (IPv6 zone ids dropped). */
export function resolvConfNameservers(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const host = m[1]!.replace(/%.*$/, '');
    if (isIP(host) !== 0) out.push({ host, port: 53 });
  }
  return out;
}

/** dns.upstreams entries: "ip" or "ip:port" ("[v6]:port"); throws MESH_ERR_CONFIG_INVALID. */
export function parseUpstreams(items: readonly string[]): Upstream[] {
  return items.map((s) => {
    if (isIP(s) !== 0) return { host: s, port: 53 };
    const hp = parseHostPort(s);
    if (hp === null || isIP(hp.host) === 0 || hp.port === 0) throw new MeshError('MESH_ERR_CONFIG_INVALID', `dns.upstreams: "${s}" is not an ip or ip:port`);
    return { host: hp.host, port: hp.port };
  });
}

export function defaultUpstreams(file = '/etc/resolv.conf'): Upstream[] {
  try {
    return resolvConfNameservers(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

export type ForwardResult = { readonly ok: true; readonly answer: Buffer; readonly upstream: string } | { readonly ok: false; readonly reason: string };

const TC = 0x0200;

export class Forwarder {
  constructor(
    readonly upstreams: readonly Upstream[],
    private readonly timeoutMs: number,
    /** transparent.redirect.proxyMark: SO_MARK on every forwarding socket. */
    private readonly mark: number | undefined = undefined,
  ) {}

  async forward(query: Buffer, clientTcp: boolean): Promise<ForwardResult> {
    if (this.upstreams.length === 0) return { ok: false, reason: 'no upstream resolvers (dns.upstreams empty and no nameserver in /etc/resolv.conf)' };
    const reasons: string[] = [];
    for (const u of this.upstreams) {
      const label = `${u.host}:${u.port}`;
      try {
        const a = await udpQuery(u, query, this.timeoutMs, this.mark);
        if (clientTcp && (a.readUInt16BE(2) & TC) !== 0) return { ok: true, answer: await tcpQuery(u, query, this.timeoutMs, this.mark), upstream: label };
        return { ok: true, answer: a, upstream: label };
      } catch (e) {
        reasons.push(`${label}: ${(e as Error).message}`);
      }
    }
    return { ok: false, reason: reasons.join('; ') };
  }
}

function udpQuery(u: Upstream, query: Buffer, timeoutMs: number, mark: number | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIP(u.host) === 6 ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    let finished = false;
    const done = (e: Error | null, b?: Buffer): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.close();
      if (e) reject(e);
      else resolve(b!);
    };
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (e) => done(e));
    // Only an answer to this query (same id, QR set) counts; anything else is ignored.
    sock.on('message', (msg) => {
      if (msg.length >= 12 && msg.readUInt16BE(0) === id && (msg[2]! & 0x80) !== 0) done(null, msg);
    });
    // The mark goes on once the socket has its fd (bound), before the first datagram.
    const send = (): void => {
      try {
        if (mark !== undefined) markDatagramSocket(sock, mark);
      } catch (e) {
        done(e as Error);
        return;
      }
      sock.send(query);
    };
    sock.connect(u.port, u.host, send);
  });
}

function tcpQuery(u: Upstream, query: Buffer, timeoutMs: number, mark: number | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dialTcp({ host: u.host, port: u.port, mark });
    let buf = Buffer.alloc(0);
    let finished = false;
    const done = (e: Error | null, b?: Buffer): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolve(b!);
    };
    const timer = setTimeout(() => done(new Error(`no TCP answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(null, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on('end', () => done(new Error('the upstream closed the TCP connection before answering')));
  });
}
