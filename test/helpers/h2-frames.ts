// Raw HTTP/2 frames for abuse tests: a client that misbehaves on purpose where node:http2 would
// refuse to. Only what the tests need: frame headers, a few frame types and a tiny HPACK
// encoder (static-table indexes and literals without Huffman coding).
import { connect, type Socket } from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK integer with an n-bit prefix. */
function int(value: number, n: number, first: number): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  return Buffer.concat([int(b.length, 7, 0), b]);
}

/** Literal header field without indexing, new name. */
export function literal(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00]), str(name), str(value)]);
}

/** Literal header field with incremental indexing (goes into the dynamic table), new name. */
export function indexedLiteral(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x40]), str(name), str(value)]);
}

/** Indexed header field (static 1..61, dynamic from 62). */
export function indexed(i: number): Buffer {
  return int(i, 7, 0x80);
}

/** GET / with :authority, as a header block. */
export function getBlock(authority: string, path = '/'): Buffer {
  return Buffer.concat([indexed(2), indexed(6), path === '/' ? indexed(4) : literal(':path', path), literal(':authority', authority)]);
}

export interface RawH2 {
  readonly socket: Socket;
  /** Bytes received so far. */
  received(): Buffer;
  /** Frames received so far (type, flags, stream, payload). */
  frames(): { type: number; flags: number; stream: number; payload: Buffer }[];
  /** The GOAWAY error code received, if any. */
  goaway(): number | undefined;
  closed(): boolean;
  write(b: Buffer): boolean;
  waitClosed(ms: number): Promise<boolean>;
}

/**
 * Connects, sends the preface and an empty SETTINGS, and resolves once the server's SETTINGS
 * arrived and were acknowledged (so its limits are in force); reads everything the server sends.
 */
export function rawH2(address: string): Promise<RawH2> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    let isClosed = false;
    let acked = 0;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // ACK the server's SETTINGS like a real client: its limits apply once acknowledged.
      const settings = parse().filter((f) => f.type === T.SETTINGS && (f.flags & F.ACK) === 0).length;
      for (; acked < settings; acked++) if (!socket.destroyed) socket.write(frame(T.SETTINGS, F.ACK, 0));
      if (acked > 0 && conn !== null) {
        resolve(conn);
        conn = null;
      }
    });
    let conn: RawH2 | null = null;
    socket.on('error', () => {});
    socket.on('close', () => (isClosed = true));
    const parse = (): { type: number; flags: number; stream: number; payload: Buffer }[] => {
      const b = Buffer.concat(chunks);
      const out = [];
      let o = 0;
      while (o + 9 <= b.length) {
        const len = b.readUIntBE(o, 3);
        if (o + 9 + len > b.length) break;
        out.push({ type: b[o + 3]!, flags: b[o + 4]!, stream: b.readUInt32BE(o + 5) & 0x7fffffff, payload: b.subarray(o + 9, o + 9 + len) });
        o += 9 + len;
      }
      return out;
    };
    socket.once('connect', () => {
      socket.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
      conn = {
        socket,
        received: () => Buffer.concat(chunks),
        frames: parse,
        goaway: () => {
          const g = parse().find((f) => f.type === T.GOAWAY);
          return g === undefined ? undefined : g.payload.readUInt32BE(4);
        },
        closed: () => isClosed,
        write: (b) => (socket.destroyed ? false : socket.write(b)),
        waitClosed: (ms) =>
          new Promise((r) => {
            if (isClosed) return r(true);
            const t = setTimeout(() => r(false), ms);
            socket.once('close', () => {
              clearTimeout(t);
              r(true);
            });
          }),
      };
    });
    socket.once('error', reject);
  });
}
