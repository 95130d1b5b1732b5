// The DNS wire format, through dns-packet (an optional dependency: only dns.enabled loads it),
// plus the few answers built by hand from the 12-byte header alone, for queries that cannot
// be decoded (so a malformed packet still gets FORMERR with its id, never an exception).
import type * as DnsPacket from 'dns-packet';
import { requireOptional } from '../core/optional-dependency.js';

export type Packet = DnsPacket.Packet;
export type Question = DnsPacket.Question;
export type Answer = DnsPacket.Answer;

export function loadDnsPacket(): typeof DnsPacket {
  return requireOptional<typeof DnsPacket>('dns-packet', 'dns.enabled');
}

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const QR = 0x8000;
const RD = 0x0100;
const RA = 0x0080;
const AA = 0x0400;

/** A header-only response (no question echoed) with `rcode`; null when `query` has no header. */
export function headerOnly(query: Buffer, rcode: number): Buffer | null {
  if (query.length < 12) return null;
  const b = Buffer.alloc(12);
  b.writeUInt16BE(query.readUInt16BE(0), 0);
  const qflags = query.readUInt16BE(2);
  // Opcode and RD are copied, as RFC 1035 asks.
  b.writeUInt16BE(QR | (qflags & 0x7800) | (qflags & RD) | RA | (rcode & 0xf), 2);
  return b;
}

export interface Reply {
  readonly rcode: number;
  readonly answers: Answer[];
  readonly authoritative: boolean;
}

/** Encodes the response to a decoded query: its question echoed, RD copied. */
export function encodeReply(dp: typeof DnsPacket, query: Packet, reply: Reply): Buffer {
  const flags = ((query.flags ?? 0) & RD) | RA | (reply.authoritative ? AA : 0) | (reply.rcode & 0xf);
  return dp.encode({ type: 'response', id: query.id ?? 0, flags, questions: query.questions ?? [], answers: reply.answers });
}
