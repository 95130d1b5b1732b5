// A small upstream resolver for DNS tests (UDP and TCP, same port):
//   ext.example     A 192.0.2.10 (or the address given as the third argument)
//   big.example     40 A records: over UDP only a truncated (TC) empty answer, over TCP all
//   silent.example  never answered (upstream timeout)
//   anything else   NXDOMAIN
// Imported by tests, or run as `node fake-resolver.js HOST PORT [EXT_ADDRESS]` (network
// namespaces), printing "ready <port>".
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as DnsPacket from 'dns-packet';

const dp = createRequire(import.meta.url)('dns-packet') as typeof DnsPacket;

export interface FakeResolver {
  readonly port: number;
  /** Query names seen, in order (UDP and TCP). */
  readonly seen: string[];
  close(): Promise<void>;
}

function answer(msg: Buffer, tcp: boolean, ext: string, seen: string[]): Buffer | null {
  const q = dp.decode(msg);
  const question = q.questions?.[0];
  if (question === undefined) return null;
  const name = question.name.toLowerCase();
  seen.push(name);
  if (name === 'silent.example') return null;
  const base = { type: 'response' as const, id: q.id ?? 0, flags: dp.RECURSION_DESIRED | dp.RECURSION_AVAILABLE, questions: q.questions ?? [] };
  if (name === 'ext.example' && question.type === 'A') return dp.encode({ ...base, answers: [{ type: 'A', name: question.name, ttl: 30, data: ext }] });
  if (name === 'big.example' && question.type === 'A') {
    if (!tcp) return dp.encode({ ...base, flags: base.flags | dp.TRUNCATED_RESPONSE, answers: [] });
    return dp.encode({ ...base, answers: Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: question.name, ttl: 30, data: `198.51.100.${i + 1}` })) });
  }
  if (name === 'ext.example' || name === 'big.example') return dp.encode({ ...base, answers: [] });
  return dp.encode({ ...base, flags: base.flags | 3, answers: [] });
}

export async function startFakeResolver(host = '127.0.0.1', port = 0, ext = '192.0.2.10'): Promise<FakeResolver> {
  const seen: string[] = [];
  const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => udp.bind(port, host, r));
  const bound = udp.address().port;
  udp.on('message', (m, rinfo) => {
    try {
      const a = answer(m, false, ext, seen);
      if (a !== null) udp.send(a, rinfo.port, rinfo.address);
    } catch {
      /* not a query */
    }
  });
  const tcp = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => s.destroy());
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        try {
          const a = answer(msg, true, ext, seen);
          if (a === null) continue;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(a.length);
          s.write(Buffer.concat([len, a]));
        } catch {
          s.destroy();
        }
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(bound, host, r));
  return {
    port: (tcp.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise((r) => {
        udp.close();
        tcp.close(() => r());
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await startFakeResolver(process.argv[2] ?? '127.0.0.1', Number(process.argv[3] ?? 0), process.argv[4] ?? '192.0.2.10');
  process.stdout.write(`ready ${r.port}\n`);
}
