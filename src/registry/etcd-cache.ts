// The on-disk copy of the last etcd snapshot, so a sidecar can start (and keep routing) while
// etcd is unreachable. Written atomically (temp file + rename), at most once per interval.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface EtcdCache {
  readonly format: 'dreammesh-etcd-cache/1';
  readonly prefix: string;
  /** etcd revision the snapshot reflects. */
  readonly revision: number;
  /** Epoch ms when this snapshot was last known to match etcd. */
  readonly syncedAtMs: number;
  /** key → record JSON, only records that were accepted. */
  readonly records: Record<string, string>;
}

export async function readEtcdCache(path: string, prefix: string): Promise<EtcdCache | { error: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return { error: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  try {
    const c = JSON.parse(text) as EtcdCache;
    if (c.format !== 'dreammesh-etcd-cache/1' || typeof c.records !== 'object' || c.records === null) return { error: `${path}: not a DreamMesh etcd cache` };
    if (c.prefix !== prefix) return { error: `${path}: cached prefix ${c.prefix} differs from registry.etcd.prefix ${prefix}` };
    return c;
  } catch {
    return { error: `${path}: not valid JSON (partial write?)` };
  }
}

export class CacheWriter {
  private timer: NodeJS.Timeout | undefined;
  private pending: (() => EtcdCache) | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly intervalMs: number,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Schedules a write of whatever `snapshot()` returns when the write happens. */
  schedule(snapshot: () => EtcdCache): void {
    this.pending = snapshot;
    if (this.timer === undefined) this.timer = setTimeout(() => void this.flush(), this.intervalMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const make = this.pending;
    this.pending = undefined;
    if (make === undefined) return this.writing;
    this.writing = this.writing.then(async () => {
      try {
        await mkdir(dirname(this.path), { recursive: true });
        const tmp = `${this.path}.${process.pid}.tmp`;
        await writeFile(tmp, JSON.stringify(make()));
        await rename(tmp, this.path);
      } catch (e) {
        this.onError(e);
      }
    });
    return this.writing;
  }
}
