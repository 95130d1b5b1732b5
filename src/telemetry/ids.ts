// Random identifiers for traces and requests without a crypto call per request: random bytes
// are drawn from the OS in 8 KiB batches (a per-request randomBytes() cost ~10% of throughput).
import { randomFillSync } from 'node:crypto';

const POOL = Buffer.allocUnsafe(8192);
let offset = POOL.length;

function take(n: number): Buffer {
  if (offset + n > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const b = POOL.subarray(offset, offset + n);
  offset += n;
  return b;
}

export function randomHex(bytes: number): string {
  return take(bytes).toString('hex');
}

/** An RFC 9562 version-4 UUID. */
export function uuidV4(): string {
  const b = Buffer.from(take(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
