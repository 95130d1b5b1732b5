// The HTTP/2 connection preface (RFC 9113 §3.4): how prior-knowledge h2c announces itself.
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** 'yes' = buf starts with the whole preface, 'maybe' = with a prefix of it, 'no' otherwise. */
export function prefaceAt(buf: Buffer, start: number): 'yes' | 'maybe' | 'no' {
  if (buf[start] !== 0x50) return 'no'; // "P": the one-byte test keeps HTTP/1 heads cheap
  const n = Math.min(buf.length - start, H2_PREFACE.length);
  if (buf.compare(H2_PREFACE, 0, n, start, start + n) !== 0) return 'no';
  return n === H2_PREFACE.length ? 'yes' : 'maybe';
}
