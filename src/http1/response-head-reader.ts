// Response heads as they arrive from an upstream, possibly split across reads and preceded by
// 1xx heads. A partial head is kept as a copy: the bytes come from a reused read buffer.
import { CR } from './chars.js';
import { parseResponseHead, skipLeadingCrlf, type HeadLimits, type ResponseHead } from './head.js';

/** A complete head, the buffer it was read from, and where the bytes after it start. */
export type HeadRead = { readonly head: ResponseHead; readonly buf: Buffer; readonly next: number } | null;

export class ResponseHeadReader {
  private partial: Buffer | null = null;

  constructor(private readonly limits: HeadLimits) {}

  /** The next head in chunk[from..] (after what an earlier read left); null = not complete yet. Throws ParseError. */
  read(chunk: Buffer, from: number): HeadRead {
    let buf = chunk;
    let i = from;
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, chunk.subarray(from)]);
      i = 0;
      this.partial = null;
    }
    i = skipLeadingCrlf(buf, i, buf.length);
    // An empty line split across reads: its CR now, its LF with the next read.
    const head = i === buf.length - 1 && buf[i] === CR ? null : parseResponseHead(buf, i, buf.length, this.limits);
    if (head === null) {
      this.partial = Buffer.from(buf.subarray(i));
      return null;
    }
    return { head, buf, next: i + head.headBytes };
  }
}
