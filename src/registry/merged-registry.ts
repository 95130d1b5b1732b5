// Several registries seen as one: the config's inline services plus a backend (file, etcd).
// A service's endpoints are the union over all sources (the same address once).
import { BaseRegistry } from './base-registry.js';
import type { Endpoint, Registry, RegistryHealth, SelfRegistration, ServiceRecord } from './registry.js';

export class MergedRegistry extends BaseRegistry {
  private unwatch: (() => void)[] = [];

  constructor(private readonly sources: readonly Registry[]) {
    super();
  }

  async start(): Promise<void> {
    for (const s of this.sources) await s.start();
    this.unwatch = this.sources.map((s) => s.watch(() => this.merge()));
    this.merge();
  }

  private merge(): void {
    // The common case (only one source holds services, e.g. etcd): publish its map as is,
    // without an O(all endpoints) copy per change.
    const nonEmpty = this.sources.filter((s) => s.snapshot().services.size > 0);
    if (nonEmpty.length <= 1) {
      this.publish(nonEmpty[0]?.snapshot().services ?? new Map());
      return;
    }
    const byName = new Map<string, Map<string, Endpoint>>();
    for (const src of this.sources) {
      for (const [name, svc] of src.snapshot().services) {
        let eps = byName.get(name);
        if (eps === undefined) byName.set(name, (eps = new Map<string, Endpoint>()));
        for (const e of svc.endpoints) if (!eps.has(e.address)) eps.set(e.address, e);
      }
    }
    const services = new Map<string, ServiceRecord>();
    for (const [name, eps] of byName) services.set(name, Object.freeze({ name, endpoints: Object.freeze([...eps.values()]) }));
    this.publish(services);
  }

  /** The backend's health (the last source); inline config is always healthy. */
  health(): RegistryHealth {
    const hs = this.sources.map((s) => s.health());
    const main = hs[hs.length - 1]!;
    return { ...main, rejected: hs.reduce((n, h) => n + h.rejected, 0) };
  }

  /** Announces through every source that can (in practice: etcd). */
  async register(self: SelfRegistration): Promise<void> {
    for (const s of this.sources) await s.register?.(self);
  }

  async deregister(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.deregister?.() ?? Promise.resolve()));
  }

  async close(): Promise<void> {
    for (const u of this.unwatch) u();
    await Promise.all(this.sources.map((s) => s.close()));
  }
}
