// Protocol detection for transparent connections, linkerd-style: read what the client sends
// first, for at most `timeoutMs`, decide, and put every byte back (socket.unshift) so the next
// stage sees the stream untouched. Biased to availability: anything not clearly HTTP/1 is
// passed on as opaque bytes, and a silent client (server-first protocols: MySQL, SMTP, ...)
// is opaque once the timeout passes.
import type { Socket } from 'node:net';

export type DetectedProtocol = 'http1' | 'http2' | 'tls' | 'opaque' | 'silent' | 'closed';

export interface Detection {
  readonly protocol: DetectedProtocol;
  /** Bytes read during detection. Unless `ended`, they have been unshifted back into the socket. */
  readonly bytes: number;
  /** The client half-closed during detection: the bytes are in `head` and were not unshifted. */
  readonly ended: boolean;
  readonly head: Buffer;
  readonly ms: number;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** Enough to tell "GET / HTTP/1.1" from anything else; longer methods still decide early. */
const ENOUGH = 16;
const METHOD = /^[A-Z][A-Z-]{0,19} [^\s]/;

/** Classifies a prefix of the stream; null = cannot tell yet (need more bytes). */
export function classify(buf: Buffer): DetectedProtocol | null {
  if (buf.length === 0) return null;
  if (buf[0] === 0x16) return buf.length < 2 ? null : buf[1] === 0x03 ? 'tls' : 'opaque';
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return n === H2_PREFACE.length ? 'http2' : buf.length >= ENOUGH ? 'http2' : null;
  const head = buf.subarray(0, Math.min(buf.length, 64)).toString('latin1');
  if (METHOD.test(head)) return 'http1';
  // Still a possible method token ("GE", "OPTIONS") and nothing else seen yet.
  if (/^[A-Z][A-Z-]*$/.test(head) && buf.length < ENOUGH) return null;
  return 'opaque';
}

/**
 * Waits for the client's first bytes (bounded by timeoutMs), classifies them and unshifts
 * them back. The socket is left paused; the caller resumes it (or hands it on).
 */
export function detectProtocol(socket: Socket, timeoutMs: number): Promise<Detection> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    let ended = false;
    const finish = (p: DetectedProtocol): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.pause();
      const head = total === 0 ? Buffer.alloc(0) : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
      if (total > 0 && !ended) socket.unshift(head);
      resolve({ protocol: p, bytes: total, ended, head, ms: performance.now() - started });
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      total += c.length;
      const p = classify(chunks.length === 1 ? c : Buffer.concat(chunks, total));
      if (p !== null) finish(p);
    };
    const onEnd = (): void => {
      ended = true;
      if (total === 0) return finish('closed');
      finish(classify(Buffer.concat(chunks, total)) ?? 'opaque');
    };
    const timer = setTimeout(() => {
      if (total === 0) return finish('silent');
      finish(classify(Buffer.concat(chunks, total)) ?? 'opaque');
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
