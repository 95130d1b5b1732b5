// etcd backend: the fleet's instances under <prefix>services/<service>/<id> (etcd-records.ts).
// Sync = one GET of the prefix (with its revision), then a watch from revision+1. When the
// watch breaks (etcd gone, compaction) the last snapshot keeps routing, and a retry loop with
// backoff does a full GET again: deletions missed while away are applied by the diff. The last
// snapshot is cached on disk so a sidecar can start while etcd is unreachable.
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import type { EtcdConfig } from '../config/schema.js';
import { MeshError } from '../core/errors.js';
import { BaseRegistry } from './base-registry.js';
import type { Endpoint, RegistryHealth, SelfRegistration, ServiceRecord, WritableRegistry } from './registry.js';
import { createEtcdClient, defaultCacheFile } from './etcd-client.js';
import { encodeInstance, instanceKey, parseInstanceKey, parseInstanceValue, servicesPrefix } from './etcd-records.js';
import { CacheWriter, readEtcdCache, type EtcdCache } from './etcd-cache.js';
import { EtcdRegistration } from './etcd-registration.js';

export interface EtcdRegistryOptions {
  readonly log: Logger;
  /** Called once per malformed record (metrics). */
  readonly onRejected?: () => void;
  /** Tests: shorter retry backoff. */
  readonly maxBackoffMs?: number;
  readonly cacheWriteIntervalMs?: number;
}

interface Instance {
  readonly service: string;
  readonly endpoint: Endpoint;
}

const MIN_BACKOFF_MS = 100;
/** At most one snapshot per this many ms from watch events (bursts are coalesced). */
const COALESCE_MS = 25;
/** A watch that lived this long resets the resync backoff. */
const STABLE_WATCH_MS = 5000;

export class EtcdRegistry extends BaseRegistry implements WritableRegistry {
  readonly client: Etcd3;
  readonly cacheFile: string;
  private readonly prefix: string;
  /** key → accepted instance. */
  private instances = new Map<string, Instance>();
  /** service → key → endpoint, for rebuilding only the services that changed. */
  private byService = new Map<string, Map<string, Endpoint>>();
  private records = new Map<string, ServiceRecord>();
  /** Services changed by watch events but not yet published (see publishSoon). */
  private pendingDirty = new Set<string>();
  private publishTimer: NodeJS.Timeout | undefined;
  private lastPublishMs = 0;
  /** Malformed keys already counted, with the mod revision that was counted. */
  private readonly badKeys = new Map<string, string>();
  private revision = 0;
  private watcher: Watcher | undefined;
  private connected = false;
  private syncedAtMs = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncing = false;
  private backoffMs = MIN_BACKOFF_MS;
  private watchStartedMs = 0;
  private message: string | undefined;
  private closed = false;
  private readonly cache: CacheWriter;
  private registration: EtcdRegistration | undefined;

  constructor(
    private readonly cfg: EtcdConfig,
    private readonly opts: EtcdRegistryOptions,
  ) {
    super();
    this.prefix = cfg.prefix;
    this.client = createEtcdClient(cfg);
    this.cacheFile = cfg.cacheFile ?? defaultCacheFile(cfg);
    this.cache = new CacheWriter(this.cacheFile, opts.cacheWriteIntervalMs ?? 2000, (e) => opts.log.warn({ err: e, cacheFile: this.cacheFile }, 'cannot write the etcd snapshot cache'));
  }

  async start(): Promise<void> {
    try {
      await this.sync();
      return;
    } catch (e) {
      const reason = describe(e);
      const cache = await readEtcdCache(this.cacheFile, this.prefix);
      if ('error' in cache) {
        await this.close();
        throw new MeshError('MESH_ERR_REGISTRY_UNAVAILABLE', `registry.etcd: cannot reach etcd at ${this.cfg.endpoints.join(',')} (${reason}) and there is no usable snapshot cache (${cache.error})`, { cause: e });
      }
      this.loadCache(cache);
      this.message = `etcd unreachable at start (${reason}); serving the cached snapshot from ${new Date(cache.syncedAtMs).toISOString()} (${this.cacheFile})`;
      this.opts.log.warn(
        { endpoints: this.cfg.endpoints, cacheFile: this.cacheFile, instances: this.instances.size, cachedAt: new Date(cache.syncedAtMs).toISOString(), reason },
        'etcd unreachable at start; serving the cached registry snapshot and retrying',
      );
      this.scheduleResync();
    }
  }

  /** Full GET of the prefix, diff against what we hold, then watch from revision+1. */
  private async sync(): Promise<void> {
    const t0 = performance.now();
    const res = await this.client.getAll().prefix(servicesPrefix(this.prefix)).exec();
    if (this.closed) return;
    const revision = Number(res.header.revision);
    const next = new Map<string, Instance>();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const inst = this.accept(key, kv);
      if (inst !== undefined) next.set(key, inst);
      else {
        const prev = this.instances.get(key);
        if (prev !== undefined) next.set(key, prev); // a bad overwrite keeps the last good record
      }
    }
    const dirty = this.pendingDirty;
    this.pendingDirty = new Set();
    clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
    for (const [key, inst] of this.instances) if (next.get(key) !== inst) dirty.add(inst.service);
    for (const [key, inst] of next) if (this.instances.get(key) !== inst) dirty.add(inst.service);
    const changed = dirty.size;
    this.replaceAll(next, dirty);
    this.revision = revision;
    this.startWatch(revision + 1);
    const wasDown = !this.connected && this.syncedAtMs > 0;
    this.connected = true;
    this.message = undefined;
    this.syncedAtMs = Date.now();
    if (changed > 0 || this.snapshot().version === 0) this.publishRecords(dirty);
    this.saveCache();
    const log = { revision, instances: this.instances.size, services: this.records.size, servicesChanged: changed, ms: Math.round(performance.now() - t0) };
    if (wasDown) this.opts.log.info(log, 'etcd reachable again; registry resynced');
    else this.opts.log.info(log, 'etcd registry synced');
  }

  private startWatch(fromRevision: number): void {
    const w = this.client.watch().prefix(servicesPrefix(this.prefix)).startRevision(String(fromRevision)).watcher();
    this.watcher = w;
    this.watchStartedMs = Date.now();
    w.on('data', (res: IWatchResponse) => {
      if (this.watcher !== w) return;
      this.applyEvents(res);
    });
    const lost = (why: string) => (err: unknown) => {
      if (this.watcher !== w || this.closed) return;
      this.lost(`${why}: ${describe(err)}`);
    };
    w.on('disconnected', lost('watch disconnected'));
    w.on('error', lost('watch canceled'));
    w.on('end', () => lost('watch ended')('stream closed'));
  }

  private applyEvents(res: IWatchResponse): void {
    const dirty = this.pendingDirty;
    for (const ev of res.events) {
      const key = ev.kv.key.toString();
      if (ev.type === 'Delete') {
        this.badKeys.delete(key);
        const prev = this.instances.get(key);
        if (prev !== undefined) this.setInstance(key, undefined, dirty);
        continue;
      }
      const inst = this.accept(key, ev.kv);
      if (inst !== undefined) this.setInstance(key, inst, dirty);
    }
    this.revision = Math.max(this.revision, Number(res.header.revision));
    this.syncedAtMs = Date.now();
    this.publishSoon();
  }

  /**
   * Publishes the pending changes now if nothing was published in the last COALESCE_MS, else
   * at the end of that window: a lone change reaches routing at once, while a burst (a deploy
   * of many instances) costs routing one rebuild per window instead of one per event.
   */
  private publishSoon(): void {
    if (this.pendingDirty.size === 0 || this.publishTimer !== undefined) return;
    const wait = this.lastPublishMs + COALESCE_MS - Date.now();
    if (wait <= 0) return this.publishPending();
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      this.publishPending();
    }, wait);
  }

  private publishPending(): void {
    clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
    if (this.pendingDirty.size === 0) return;
    const dirty = this.pendingDirty;
    this.pendingDirty = new Set();
    this.publishRecords(dirty);
    this.saveCache();
  }

  /** Parses one KV; a malformed one is logged and counted once (per modification) and ignored. */
  private accept(key: string, kv: IKeyValue): Instance | undefined {
    const id = parseInstanceKey(this.prefix, key);
    try {
      if (id === null) throw new Error(`key is not ${servicesPrefix(this.prefix)}<service>/<instance-id>`);
      this.badKeys.delete(key);
      const prev = this.instances.get(key);
      const endpoint = parseInstanceValue(kv.value.toString());
      if (prev !== undefined && sameEndpoint(prev.endpoint, endpoint)) return prev;
      return { service: id.service, endpoint };
    } catch (e) {
      if (this.badKeys.get(key) !== kv.mod_revision) {
        this.badKeys.set(key, kv.mod_revision);
        this.rejected += 1;
        this.opts.onRejected?.();
        this.opts.log.warn({ key, reason: (e as Error).message, kept: this.instances.has(key) ? 'last good record' : 'nothing' }, 'malformed etcd registry record ignored');
      }
      return undefined;
    }
  }

  private setInstance(key: string, inst: Instance | undefined, dirty: Set<string>): void {
    const prev = this.instances.get(key);
    if (prev === inst) return;
    if (prev !== undefined) {
      this.byService.get(prev.service)?.delete(key);
      dirty.add(prev.service);
    }
    if (inst === undefined) this.instances.delete(key);
    else {
      this.instances.set(key, inst);
      let m = this.byService.get(inst.service);
      if (m === undefined) this.byService.set(inst.service, (m = new Map<string, Endpoint>()));
      m.set(key, inst.endpoint);
      dirty.add(inst.service);
    }
  }

  private replaceAll(next: Map<string, Instance>, dirty: Set<string>): void {
    for (const key of [...this.instances.keys()]) if (!next.has(key)) this.setInstance(key, undefined, dirty);
    for (const [key, inst] of next) this.setInstance(key, inst, dirty);
  }

  /** Rebuilds the records of the services that changed and publishes one snapshot. */
  private publishRecords(dirty: ReadonlySet<string>): void {
    const records = new Map(this.records);
    for (const name of dirty) {
      const eps = this.byService.get(name);
      if (eps === undefined || eps.size === 0) {
        this.byService.delete(name);
        records.delete(name);
        continue;
      }
      const byAddress = new Map<string, Endpoint>();
      for (const key of [...eps.keys()].sort()) byAddress.set(eps.get(key)!.address, eps.get(key)!);
      records.set(name, Object.freeze({ name, endpoints: Object.freeze([...byAddress.values()]) }));
    }
    this.records = records;
    this.lastPublishMs = Date.now();
    this.publish(records);
  }

  private lost(why: string): void {
    if (this.closed) return;
    // A watch that held for a while means etcd was healthy: start the backoff over. One that
    // broke right after a resync (etcd flapping) keeps backing off, so a fleet does not hammer
    // a struggling etcd with full GETs.
    if (Date.now() - this.watchStartedMs > STABLE_WATCH_MS) this.backoffMs = MIN_BACKOFF_MS;
    const w = this.watcher;
    this.watcher = undefined;
    w?.removeAllListeners();
    w?.on('error', () => {});
    void w?.cancel().catch(() => {});
    if (this.connected) {
      this.connected = false;
      this.message = `etcd unreachable since ${new Date().toISOString()} (${why}); routing with the last known snapshot`;
      this.opts.log.warn({ reason: why, instances: this.instances.size }, 'lost etcd; keeping the last known endpoints and retrying');
    }
    this.scheduleResync();
  }

  private scheduleResync(): void {
    if (this.closed || this.resyncTimer !== undefined || this.resyncing) return;
    const max = this.opts.maxBackoffMs ?? 2000;
    const delay = Math.min(this.backoffMs, max) * (0.75 + Math.random() * 0.5);
    this.backoffMs = Math.min(this.backoffMs * 2, max);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      this.resyncing = true;
      this.sync().then(
        () => {
          this.resyncing = false;
        },
        (e: unknown) => {
          this.resyncing = false;
          if (!this.closed) {
            this.opts.log.debug({ reason: describe(e) }, 'etcd resync failed; will retry');
            const since = this.message ?? `etcd unreachable (${describe(e)})`;
            this.message = since;
            this.scheduleResync();
          }
        },
      );
    }, delay);
  }

  private loadCache(c: EtcdCache): void {
    const next = new Map<string, Instance>();
    for (const [key, value] of Object.entries(c.records)) {
      const id = parseInstanceKey(this.prefix, key);
      if (id === null) continue;
      try {
        next.set(key, { service: id.service, endpoint: parseInstanceValue(value) });
      } catch {
        /* the cache only ever holds accepted records; skip anything odd */
      }
    }
    const dirty = new Set<string>();
    this.replaceAll(next, dirty);
    this.revision = c.revision;
    this.publishRecords(dirty);
    this.syncedAtMs = c.syncedAtMs;
  }

  private saveCache(): void {
    this.cache.schedule(() => {
      const records: Record<string, string> = {};
      for (const [key, inst] of this.instances) records[key] = encodeInstance(inst.endpoint);
      return { format: 'dreammesh-etcd-cache/1', prefix: this.prefix, revision: this.revision, syncedAtMs: this.connected ? Date.now() : this.syncedAtMs, records };
    });
  }

  health(): RegistryHealth {
    return {
      backend: 'etcd',
      connected: this.connected,
      // While the watch is up the snapshot is current; otherwise it is as old as the last sync.
      lastSyncMs: this.connected ? Date.now() : this.syncedAtMs,
      rejected: this.rejected,
      ...(this.message ? { message: this.message } : {}),
    };
  }

  /** The etcd revision the snapshot reflects. */
  get syncedRevision(): number {
    return this.revision;
  }

  async put(service: string, e: Omit<Endpoint, 'host' | 'port'>): Promise<void> {
    await this.client.put(instanceKey(this.prefix, service, e.address)).value(encodeInstance(e));
  }

  async remove(service: string, address: string): Promise<void> {
    const keys = new Set([instanceKey(this.prefix, service, address)]);
    for (const [key, inst] of this.instances) if (inst.service === service && inst.endpoint.address === address) keys.add(key);
    for (const key of keys) await this.client.delete().key(key);
  }

  async register(self: SelfRegistration): Promise<void> {
    if (this.registration !== undefined) throw new Error('this sidecar is already registered');
    const key = instanceKey(this.prefix, self.service, self.id ?? self.address);
    this.registration = new EtcdRegistration(this.client, key, encodeInstance(self), this.cfg.leaseTtlSeconds, this.opts.log, this.opts.maxBackoffMs ?? 2000);
    await this.registration.start();
  }

  async deregister(): Promise<void> {
    await this.registration?.stop();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.deregister();
    this.closed = true;
    clearTimeout(this.resyncTimer);
    clearTimeout(this.publishTimer);
    const w = this.watcher;
    this.watcher = undefined;
    if (w !== undefined) {
      w.removeAllListeners();
      w.on('error', () => {});
      await Promise.race([w.cancel().catch(() => {}), sleep(500)]);
    }
    if (this.syncedAtMs > 0) this.saveCache();
    await this.cache.flush();
    this.client.close();
  }
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  if (a.address !== b.address || a.weight !== b.weight || a.mtls !== b.mtls) return false;
  const ka = Object.keys(a.labels);
  if (ka.length !== Object.keys(b.labels).length) return false;
  return ka.every((k) => a.labels[k] === b.labels[k]);
}

function describe(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.slice(0, 200);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
