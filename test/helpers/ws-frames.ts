// A minimal WebSocket frame codec (RFC 6455) for raw-socket tests that cannot use a client
// library: a handshake through the forward-proxy entry (absolute-form) or from inside a network
// namespace. Client frames are masked; server frames are read unmasked.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function wsKey(): string {
  return randomBytes(16).toString('base64');
}

export function wsAccept(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

/** Handshake headers (after the request line and Host). */
export function wsHeaders(key: string): [string, string][] {
  return [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', key],
    ['Sec-WebSocket-Version', '13'],
  ];
}

export const OP = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** One masked client frame. */
export function clientFrame(opcode: number, payload: Buffer | string): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const mask = randomBytes(4);
  const len = p.length;
  const headLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const h = Buffer.alloc(headLen + 4);
  h[0] = 0x80 | opcode;
  if (len < 126) h[1] = 0x80 | len;
  else if (len < 65536) {
    h[1] = 0x80 | 126;
    h.writeUInt16BE(len, 2);
  } else {
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(len), 2);
  }
  mask.copy(h, headLen);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = p[i]! ^ mask[i % 4]!;
  return Buffer.concat([h, body]);
}

export interface Frame {
  opcode: number;
  payload: Buffer;
}

/** Parses complete (unmasked, unfragmented) server frames; returns them and the leftover bytes. */
export function readFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let p = 0;
  for (;;) {
    if (buf.length - p < 2) break;
    const opcode = buf[p]! & 0x0f;
    let len = buf[p + 1]! & 0x7f;
    const masked = (buf[p + 1]! & 0x80) !== 0;
    let off = p + 2;
    if (len === 126) {
      if (buf.length - p < 4) break;
      len = buf.readUInt16BE(p + 2);
      off = p + 4;
    } else if (len === 127) {
      if (buf.length - p < 10) break;
      len = Number(buf.readBigUInt64BE(p + 2));
      off = p + 10;
    }
    const maskKey = masked ? buf.subarray(off, off + 4) : null;
    if (masked) off += 4;
    if (buf.length < off + len) break;
    let payload = buf.subarray(off, off + len);
    if (maskKey) payload = Buffer.from(payload.map((b, i) => b ^ maskKey[i % 4]!));
    frames.push({ opcode, payload });
    p = off + len;
  }
  return { frames, rest: buf.subarray(p) };
}

export interface WsSession {
  /** Status of the handshake response (0 if none arrived). */
  status: number;
  responseHead: string;
  /** Frames received, in order (echoes, then the close frame if any). */
  frames: Frame[];
  /** The connection was closed by the other side. */
  closed: boolean;
  error: string | undefined;
}

/**
 * Raw WebSocket session: writes `requestHead`, and after a 101 sends each message, waiting for
 * one frame back after each, then a close frame. Bounded by `ms` overall.
 */
export function rawWsSession(address: string, requestHead: string, messages: { opcode: number; payload: Buffer | string }[], ms = 6000): Promise<WsSession> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve) => {
    const s = connect({ host, port, allowHalfOpen: true });
    let buf: Buffer = Buffer.alloc(0);
    const out: WsSession = { status: 0, responseHead: '', frames: [], closed: false, error: undefined };
    let settled = false;
    let wake: (() => void) | null = null;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(finish, ms);
    const pull = (): void => {
      if (out.status === 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        out.responseHead = buf.subarray(0, end + 4).toString('latin1');
        out.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out.responseHead)?.[1] ?? 0);
        buf = buf.subarray(end + 4);
        if (out.status !== 101) return;
      }
      if (out.status === 101) {
        const r = readFrames(buf);
        out.frames.push(...r.frames);
        buf = r.rest;
      }
    };
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      pull();
      wake?.();
    });
    s.on('end', () => {
      out.closed = true;
      wake?.();
      finish();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      out.error = e.code ?? e.message;
      out.closed = true;
      wake?.();
      finish();
    });
    const waitFor = async (cond: () => boolean, limit: number): Promise<void> => {
      const deadline = Date.now() + limit;
      while (!cond() && !settled && Date.now() < deadline) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
        wake = null;
      }
    };
    s.on('connect', () => {
      void (async () => {
        s.write(requestHead);
        await waitFor(() => out.status !== 0, ms);
        if (out.status !== 101) {
          // Let the rest of a refusal arrive; the caller inspects the head.
          await new Promise((r) => setTimeout(r, 100));
          return finish();
        }
        for (const m of messages) {
          const want = out.frames.length + 1;
          s.write(clientFrame(m.opcode, m.payload));
          await waitFor(() => out.frames.length >= want, ms);
        }
        const closeBody = Buffer.from([0x03, 0xe8]);
        const want = out.frames.length + 1;
        s.write(clientFrame(OP.close, closeBody));
        await waitFor(() => out.frames.length >= want || out.closed, 2000);
        finish();
      })();
    });
  });
}
