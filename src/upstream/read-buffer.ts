// Upstream sockets read into a buffer of their own that is reused from one read to the next
// while whoever takes the bytes passes them on at once: a bulk transfer then allocates
// nothing per read (Node's default 64 KiB allocation per read keeps V8 collecting garbage,
// at a cost that grows with the heap). A sink that keeps a reference to the bytes (a write
// the kernel did not take at once, a partial head) says so, and the next read gets a fresh
// buffer.
import type { OnReadOpts, Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Bytes read from an upstream per read call (HAProxy's default buffer is 16 KiB). */
const READ_BUFFER_BYTES = 32 * 1024;

/** Where each upstream socket's bytes go: returns true when it kept a reference to them. */
export const readSinks = new WeakMap<Socket, (chunk: Buffer) => boolean>();

/** The `onread` option for a socket whose bytes go to readSinks.get(socket()). */
export function reusableRead(socket: () => Socket): OnReadOpts {
  let buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  let retained = false;
  return {
    // Called before every read: a buffer still referenced by its sink is left to it.
    buffer: () => {
      if (retained) {
        buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
        retained = false;
      }
      return buffer;
    },
    callback: (n: number, buf: Uint8Array) => {
      const sink = readSinks.get(socket());
      retained = sink === undefined ? false : sink(Buffer.from(buf.buffer, buf.byteOffset, n));
      return true;
    },
  };
}

/**
 * After writing a view of the read buffer to `out`: did `out` keep it? True unless the
 * kernel took everything at once (nothing queued before, libuv queued nothing).
 */
export function writeKept(out: Duplex, queuedBefore: boolean): boolean {
  const handle = (out as { _handle?: { writeQueueSize?: number } | null })._handle;
  return queuedBefore || out.writableLength > 0 || (handle?.writeQueueSize ?? 0) !== 0;
}
