// Byte classes of RFC 9110/9112, as lookup tables: the parser tests one array element per
// byte instead of a regular expression per field.

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

const TCHAR_PUNCT = "!#$%&'*+-.^_`|~";

/** tchar: header names, methods, transfer codings, chunk-extension names. */
export const TOKEN = table((c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || TCHAR_PUNCT.includes(String.fromCharCode(c)));

/** field-vchar / SP / HTAB / obs-text: everything but CTLs (HTAB allowed) and DEL. */
export const FIELD_VALUE = table((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f));

/** Request-target: visible ASCII only (stricter than obs-text-tolerant parsers). */
export const TARGET = table((c) => c > 0x20 && c < 0x7f);

/** Authority (host, port, userinfo) in a request-target: unreserved, sub-delims, : @ [ ] %. */
export const AUTHORITY = table((c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || "-._~!$&'()*+,;=:@[]%".includes(String.fromCharCode(c)));

/** Reason phrase: HTAB, SP, VCHAR, obs-text. */
export const REASON = FIELD_VALUE;

/** Hex digit value, or -1. */
export const HEX = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let c = 0; c < 10; c++) t[0x30 + c] = c;
  for (let c = 0; c < 6; c++) {
    t[0x41 + c] = 10 + c;
    t[0x61 + c] = 10 + c;
  }
  return t;
})();

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
