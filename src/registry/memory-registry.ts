// In-process registry: serves the inline `services:` of the config, and tests.
import { BaseRegistry } from './base-registry.js';
import type { Endpoint, RegistryHealth, ServiceRecord, WritableRegistry } from './registry.js';
import { toEndpoint } from './normalize.js';

export class MemoryRegistry extends BaseRegistry implements WritableRegistry {
  private services = new Map<string, ServiceRecord>();

  constructor(initial: ReadonlyMap<string, ServiceRecord> = new Map()) {
    super();
    this.services = new Map(initial);
  }

  async start(): Promise<void> {
    this.publish(new Map(this.services));
  }

  replace(services: ReadonlyMap<string, ServiceRecord>): void {
    this.services = new Map(services);
    this.publish(new Map(this.services));
  }

  async put(service: string, e: Omit<Endpoint, 'host' | 'port'>): Promise<void> {
    const ep = toEndpoint({ address: e.address, weight: e.weight, labels: { ...e.labels }, ...(e.protocol !== undefined ? { protocol: e.protocol } : {}) });
    if (!ep) {
      this.rejected += 1;
      throw new Error(`bad endpoint address "${e.address}"`);
    }
    const prev = this.services.get(service)?.endpoints ?? [];
    const endpoints = [...prev.filter((p) => p.address !== ep.address), ep];
    this.services.set(service, Object.freeze({ name: service, endpoints }));
    this.publish(new Map(this.services));
  }

  async remove(service: string, address: string): Promise<void> {
    const prev = this.services.get(service);
    if (!prev) return;
    const endpoints = prev.endpoints.filter((p) => p.address !== address);
    if (endpoints.length === 0) this.services.delete(service);
    else this.services.set(service, Object.freeze({ name: service, endpoints }));
    this.publish(new Map(this.services));
  }

  health(): RegistryHealth {
    return { backend: 'memory', connected: true, lastSyncMs: this.lastSyncMs, rejected: this.rejected };
  }

  async close(): Promise<void> {}
}
