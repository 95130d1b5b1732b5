// The chunked transfer coding (RFC 9112 §7.1), as a byte-at-a-time state machine that only
// finds where the body ends and checks its syntax: the engine forwards the chunked bytes
// unchanged, so both sides of the proxy see exactly the framing the client sent.
import { CR, HEX, HTAB, LF, SP, TOKEN } from './chars.js';
import { parseFields, type HeadLimits, type MessageHead } from './head.js';
import { ParseError } from './parse-error.js';

const enum S {
  SizeStart,
  Size,
  ExtNameStart,
  ExtName,
  ExtValueStart,
  ExtValue,
  ExtQuoted,
  ExtQuotedEscape,
  ExtQuotedEnd,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLf,
  EndLf,
  Done,
}

/** Largest chunk size accepted: 2^48 bytes, far beyond any real body, well inside a double. */
const MAX_CHUNK_SIZE = 2 ** 48;
/** Chunk extensions across one message (unbounded extensions are a known DoS). */
const MAX_EXTENSION_BYTES = 16384;

export class ChunkedDecoder {
  private state = S.SizeStart;
  private size = 0;
  private extensionBytes = 0;
  private trailer: number[] | null = null;
  /** Trailer fields (lower-cased names), once the body is done. */
  trailers: MessageHead | null = null;

  constructor(
    private readonly limits: HeadLimits,
    /** Receives each run of chunk data (tests and tools decode; the engine passes bytes through). */
    private readonly onData: ((buf: Buffer, start: number, end: number) => void) | null = null,
  ) {}

  get done(): boolean {
    return this.state === S.Done;
  }

  /** Scans buf[start, end); returns the offset just after the body, or `end` if it goes on. */
  feed(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      const c = buf[i]!;
      switch (this.state) {
        case S.SizeStart:
          if (HEX[c]! < 0) throw new ParseError('INVALID_CHUNK_SIZE', 'a chunk size must start with a hex digit');
          this.size = HEX[c]!;
          this.state = S.Size;
          i++;
          break;
        case S.Size:
          if (HEX[c]! >= 0) {
            this.size = this.size * 16 + HEX[c]!;
            if (this.size > MAX_CHUNK_SIZE) throw new ParseError('INVALID_CHUNK_SIZE', 'chunk size too large');
          } else if (c === 0x3b) this.state = S.ExtNameStart;
          else if (c === CR) this.state = S.SizeLf;
          else throw new ParseError('INVALID_CHUNK_SIZE', 'a chunk size line holds hex digits, extensions and CRLF only');
          i++;
          break;
        case S.ExtNameStart:
          this.ext();
          if (TOKEN[c] !== 1) throw new ParseError('INVALID_CHUNK_EXTENSION', 'a chunk extension needs a name');
          this.state = S.ExtName;
          i++;
          break;
        case S.ExtName:
          this.ext();
          if (TOKEN[c] === 1) {
            /* stay */
          } else if (c === 0x3d) this.state = S.ExtValueStart;
          else if (c === 0x3b) this.state = S.ExtNameStart;
          else if (c === CR) this.state = S.SizeLf;
          else throw new ParseError('INVALID_CHUNK_EXTENSION', 'bad byte in a chunk extension name');
          i++;
          break;
        case S.ExtValueStart:
          this.ext();
          if (c === 0x22) this.state = S.ExtQuoted;
          else if (TOKEN[c] === 1) this.state = S.ExtValue;
          else throw new ParseError('INVALID_CHUNK_EXTENSION', 'a chunk extension value must be a token or a quoted string');
          i++;
          break;
        case S.ExtValue:
          this.ext();
          if (TOKEN[c] === 1) {
            /* stay */
          } else if (c === 0x3b) this.state = S.ExtNameStart;
          else if (c === CR) this.state = S.SizeLf;
          else throw new ParseError('INVALID_CHUNK_EXTENSION', 'bad byte in a chunk extension value');
          i++;
          break;
        case S.ExtQuoted:
          this.ext();
          if (c === 0x22) this.state = S.ExtQuotedEnd;
          else if (c === 0x5c) this.state = S.ExtQuotedEscape;
          else if (!(c === HTAB || c === SP || (c >= 0x21 && c !== 0x7f))) throw new ParseError('INVALID_CHUNK_EXTENSION', 'control character in a quoted chunk extension');
          i++;
          break;
        case S.ExtQuotedEscape:
          this.ext();
          if (!(c === HTAB || c === SP || (c >= 0x21 && c !== 0x7f))) throw new ParseError('INVALID_CHUNK_EXTENSION', 'bad escape in a quoted chunk extension');
          this.state = S.ExtQuoted;
          i++;
          break;
        case S.ExtQuotedEnd:
          this.ext();
          if (c === 0x3b) this.state = S.ExtNameStart;
          else if (c === CR) this.state = S.SizeLf;
          else throw new ParseError('INVALID_CHUNK_EXTENSION', 'bytes after a quoted chunk extension');
          i++;
          break;
        case S.SizeLf:
          if (c !== LF) throw new ParseError('LF_EXPECTED', 'chunk size line: CR not followed by LF');
          this.state = this.size === 0 ? S.TrailerLineStart : S.Data;
          i++;
          break;
        case S.Data: {
          const n = Math.min(this.size, end - i);
          if (this.onData !== null) this.onData(buf, i, i + n);
          this.size -= n;
          i += n;
          if (this.size === 0) this.state = S.DataCr;
          break;
        }
        case S.DataCr:
          if (c !== CR) throw new ParseError('INVALID_CHUNK_DATA_END', 'chunk data must be followed by CRLF');
          this.state = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (c !== LF) throw new ParseError('INVALID_CHUNK_DATA_END', 'chunk data must be followed by CRLF');
          this.state = S.SizeStart;
          i++;
          break;
        case S.TrailerLineStart:
          if (c === CR) this.state = S.EndLf;
          else {
            if (c === LF) throw new ParseError('CR_EXPECTED', 'bare LF in the trailer section');
            this.keepTrailer(c);
            this.state = S.TrailerLine;
          }
          i++;
          break;
        case S.TrailerLine:
          if (c === LF) throw new ParseError('CR_EXPECTED', 'bare LF in the trailer section');
          this.keepTrailer(c);
          if (c === CR) this.state = S.TrailerLf;
          i++;
          break;
        case S.TrailerLf:
          if (c !== LF) throw new ParseError('LF_EXPECTED', 'trailer line: CR not followed by LF');
          this.keepTrailer(c);
          this.state = S.TrailerLineStart;
          i++;
          break;
        case S.EndLf:
          if (c !== LF) throw new ParseError('LF_EXPECTED', 'last chunk: CR not followed by LF');
          this.finishTrailers();
          this.state = S.Done;
          return i + 1;
        case S.Done:
          return i;
      }
    }
    return i;
  }

  private ext(): void {
    if (++this.extensionBytes > MAX_EXTENSION_BYTES) throw new ParseError('INVALID_CHUNK_EXTENSION', `chunk extensions exceed ${MAX_EXTENSION_BYTES} bytes`);
  }

  private keepTrailer(c: number): void {
    const t = (this.trailer ??= []);
    t.push(c);
    if (t.length > this.limits.maxHeaderBytes) throw new ParseError('TRAILERS_TOO_LARGE', `the trailer section exceeds ${this.limits.maxHeaderBytes} bytes`);
  }

  /** Trailers use the header grammar; they are checked once whole. */
  private finishTrailers(): void {
    const head: MessageHead = {
      versionMinor: 1,
      names: [],
      lower: [],
      values: [],
      headBytes: 0,
      contentLength: -1,
      transferEncoding: null,
      chunked: false,
      connectionTokens: null,
      upgrade: null,
    };
    if (this.trailer !== null) {
      const bytes = Buffer.from([...this.trailer, CR, LF]);
      const limits = { ...this.limits, maxHeaderBytes: this.limits.maxHeaderBytes + 2 };
      const plain = { ...head };
      if (parseFieldsSyntaxOnly(bytes, limits, plain) < 0) throw new ParseError('TRAILERS_TOO_LARGE', 'incomplete trailer section');
      // Framing fields cannot be trailers (RFC 9110 §6.5.1): a parser that honoured one would frame differently.
      if (plain.contentLength !== -1) throw new ParseError('INVALID_CONTENT_LENGTH', 'Content-Length in the trailer section');
      if (plain.transferEncoding !== null) throw new ParseError('INVALID_TRANSFER_ENCODING', 'Transfer-Encoding in the trailer section');
      if (plain.connectionTokens !== null) throw new ParseError('INVALID_HEADER_NAME', 'Connection in the trailer section');
      this.trailers = plain;
    } else this.trailers = head;
  }
}

function parseFieldsSyntaxOnly(bytes: Buffer, limits: HeadLimits, head: MessageHead): number {
  return parseFields(bytes, 0, bytes.length, 0, limits, head, null);
}
