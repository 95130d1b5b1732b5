// The last captured connections of the outbound listener: downstream address → original
// destination. `dreammesh redirect verify` opens a probe connection and asks the admin API
// (/verify/capture) whether this sidecar saw it and with which original destination, which
// proves capture end to end without sending a byte through the data path. Bounded: the oldest
// entry goes first.
import type { HostPort } from '../core/sidecar-context.js';

const MAX = 256;

export interface CaptureRecord {
  readonly originalDst: HostPort;
  readonly at: number;
}

export class CaptureLog {
  private readonly entries = new Map<string, CaptureRecord>();

  note(client: string | undefined, port: number | undefined, originalDst: HostPort): void {
    const k = key(client, port);
    this.entries.delete(k);
    this.entries.set(k, { originalDst, at: Date.now() });
    if (this.entries.size > MAX) this.entries.delete(this.entries.keys().next().value as string);
  }

  find(client: string, port: number): CaptureRecord | undefined {
    return this.entries.get(key(client, port));
  }
}

function key(client: string | undefined, port: number | undefined): string {
  return `${(client ?? '').replace(/^::ffff:(?=\d+\.)/, '').toLowerCase()}|${port ?? 0}`;
}
