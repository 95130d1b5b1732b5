// The DNS listener: UDP and TCP on dns.listen. Mesh names are answered from the virtual IP
// map (A; AAAA when dns.ipv6Cidr is set, else an empty NOERROR; other types an empty
// NOERROR); every other name is forwarded (forwarder.ts). Nothing a client sends may crash
// it: undecodable → FORMERR (or dropped without a header), opcodes other than QUERY →
// NOTIMP, several questions → FORMERR, responses sent to us → dropped.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type * as DnsPacket from 'dns-packet';
import type { Metrics } from '../telemetry/metrics.js';
import type { HostPort } from '../core/sidecar-context.js';
import { MeshError } from '../core/errors.js';
import { parseHostPort } from '../core/address.js';
import type { Forwarder } from './forwarder.js';
import { RCODE, encodeReply, headerOnly, loadDnsPacket, type Answer, type Packet } from './wire.js';

export interface MeshAnswer {
  readonly service: string;
  readonly v4: string | undefined;
  readonly v6: string | undefined;
}

export interface DnsServerDeps {
  readonly listen: string;
  readonly ttl: number;
  /** The service a query name means, with its virtual IPs; undefined: not a mesh name. */
  lookup(name: string): MeshAnswer | undefined;
  readonly forwarder: Forwarder;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export type DnsOutcome = 'mesh' | 'mesh_nodata' | 'forwarded' | 'servfail' | 'formerr' | 'notimp' | 'dropped' | 'refused';

const COUNTED_TYPES = new Set(['A', 'AAAA', 'ANY', 'PTR', 'SRV', 'MX', 'TXT', 'CNAME', 'NS', 'SOA']);
/** Forwards in flight beyond this get REFUSED at once (each holds a socket). */
const MAX_FORWARDS = 512;
const TCP_IDLE_MS = 10_000;
const TCP_MAX_QUEUED = 32;
const QR = 0x80;

export class DnsServer {
  private readonly dp: typeof DnsPacket;
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private forwarding = 0;
  private readonly sockets = new Set<Socket>();
  bound: HostPort | undefined;

  constructor(private readonly deps: DnsServerDeps) {
    this.dp = loadDnsPacket();
  }

  /** Binds UDP and TCP on the same port (port 0: the port UDP got). */
  async start(): Promise<HostPort> {
    const hp = parseHostPort(this.deps.listen);
    if (hp === null || isIP(hp.host) === 0) throw new MeshError('MESH_ERR_CONFIG_INVALID', `dns.listen: "${this.deps.listen}" is not ip:port`);
    const udp = createSocket({ type: isIP(hp.host) === 6 ? 'udp6' : 'udp4' });
    this.udp = udp;
    const failed =
      (proto: string, reject: (e: Error) => void) =>
      (e: NodeJS.ErrnoException): void =>
        reject(new MeshError('MESH_ERR_CONFIG_INVALID', `dns.listen: cannot listen on ${this.deps.listen} (${proto}): ${e.code ?? e.message}`, { cause: e }));
    await new Promise<void>((resolve, reject) => {
      const onError = failed('UDP', reject);
      udp.once('error', onError);
      udp.bind(hp.port, hp.host, () => {
        udp.off('error', onError);
        resolve();
      });
    });
    udp.on('error', (e) => this.deps.log.warn({ error: String(e) }, 'dns: UDP socket error'));
    udp.on('message', (msg, rinfo) => void this.onUdp(msg, rinfo.address, rinfo.port));
    const port = udp.address().port;
    const tcp = createServer((s) => this.onTcp(s));
    tcp.maxConnections = 256;
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      const onError = failed('TCP', reject);
      tcp.once('error', onError);
      tcp.listen(port, hp.host, () => {
        tcp.off('error', onError);
        resolve();
      });
    });
    tcp.on('error', (e) => this.deps.log.warn({ error: String(e) }, 'dns: TCP listener error'));
    this.bound = { host: hp.host, port };
    return this.bound;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const closing: Promise<void>[] = [];
    if (this.udp !== undefined) {
      const u = this.udp;
      closing.push(new Promise((r) => u.close(() => r())));
    }
    if (this.tcp?.listening) {
      const t = this.tcp;
      closing.push(new Promise((r) => t.close(() => r())));
    }
    this.udp = undefined;
    this.tcp = undefined;
    return Promise.all(closing).then(() => undefined);
  }

  private async onUdp(msg: Buffer, address: string, port: number): Promise<void> {
    const out = await this.handle(msg, false);
    try {
      if (out !== null && this.udp !== undefined) this.udp.send(out, port, address, () => {});
    } catch {
      /* closing: the client retries */
    }
  }

  private onTcp(s: Socket): void {
    this.sockets.add(s);
    s.setTimeout(TCP_IDLE_MS, () => s.destroy());
    s.on('error', () => s.destroy());
    s.on('close', () => this.sockets.delete(s));
    let buf: Buffer = Buffer.alloc(0);
    let queued = 0;
    let chain = Promise.resolve();
    s.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        // A length below a DNS header cannot be a query; the stream cannot be resynchronised.
        if (len < 12) {
          this.count('dropped', '-');
          s.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (++queued > TCP_MAX_QUEUED) {
          s.destroy();
          return;
        }
        // In order, one at a time per connection (RFC 7766 allows more; stub resolvers rarely pipeline).
        chain = chain.then(async () => {
          const out = await this.handle(msg, true);
          queued--;
          if (out !== null && !s.destroyed) {
            const len2 = Buffer.alloc(2);
            len2.writeUInt16BE(out.length);
            s.write(Buffer.concat([len2, out]));
          } else if (out === null) s.destroy();
        });
      }
    });
  }

  private count(outcome: DnsOutcome, qtype: string): void {
    this.deps.metrics.dnsQueries.inc({ outcome, qtype: COUNTED_TYPES.has(qtype) || qtype === '-' ? qtype : 'other' });
  }

  /** The response to one query, or null to drop it. Never throws. */
  async handle(msg: Buffer, tcp: boolean): Promise<Buffer | null> {
    try {
      return await this.answer(msg, tcp);
    } catch (e) {
      this.deps.log.debug({ error: String(e) }, 'dns: query failed');
      this.count('servfail', '-');
      return headerOnly(msg, RCODE.SERVFAIL);
    }
  }

  private async answer(msg: Buffer, tcp: boolean): Promise<Buffer | null> {
    if (msg.length < 12 || (msg[2]! & QR) !== 0) {
      this.count('dropped', '-');
      return null;
    }
    const opcode = (msg[2]! >> 3) & 0xf;
    if (opcode !== 0) {
      this.count('notimp', '-');
      return headerOnly(msg, RCODE.NOTIMP);
    }
    let q: Packet;
    try {
      q = this.dp.decode(msg);
    } catch {
      this.count('formerr', '-');
      return headerOnly(msg, RCODE.FORMERR);
    }
    const question = q.questions?.[0];
    if (question === undefined || q.questions!.length !== 1) {
      this.count('formerr', '-');
      return headerOnly(msg, RCODE.FORMERR);
    }
    const qtype = String(question.type);
    const klass = String(question.class ?? 'IN');
    const mesh = klass === 'IN' || klass === 'ANY' ? this.deps.lookup(question.name) : undefined;
    if (mesh !== undefined) {
      const answers: Answer[] = [];
      const ttl = this.deps.ttl;
      if ((qtype === 'A' || qtype === 'ANY') && mesh.v4 !== undefined) answers.push({ type: 'A', class: 'IN', name: question.name, ttl, data: mesh.v4 });
      if ((qtype === 'AAAA' || qtype === 'ANY') && mesh.v6 !== undefined) answers.push({ type: 'AAAA', class: 'IN', name: question.name, ttl, data: mesh.v6 });
      this.count(answers.length > 0 ? 'mesh' : 'mesh_nodata', qtype);
      return encodeReply(this.dp, q, { rcode: RCODE.NOERROR, answers, authoritative: true });
    }
    if (this.forwarding >= MAX_FORWARDS) {
      this.count('refused', qtype);
      return encodeReply(this.dp, q, { rcode: RCODE.REFUSED, answers: [], authoritative: false });
    }
    this.forwarding++;
    try {
      const r = await this.deps.forwarder.forward(msg, tcp);
      if (r.ok) {
        this.count('forwarded', qtype);
        return r.answer;
      }
      this.count('servfail', qtype);
      this.deps.log.debug({ name: question.name.slice(0, 255), reason: r.reason }, 'dns: upstream resolvers failed');
      return encodeReply(this.dp, q, { rcode: RCODE.SERVFAIL, answers: [], authoritative: false });
    } finally {
      this.forwarding--;
    }
  }
}
