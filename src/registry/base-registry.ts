// Snapshot bookkeeping shared by every backend: versioning and ordered watcher notification.
import type { Registry, RegistryHealth, RegistrySnapshot, ServiceRecord, SnapshotListener } from './registry.js';
import { EMPTY_SNAPSHOT } from './registry.js';

export abstract class BaseRegistry implements Registry {
  private current: RegistrySnapshot = EMPTY_SNAPSHOT;
  private readonly listeners = new Set<SnapshotListener>();
  protected rejected = 0;
  protected lastSyncMs = 0;

  abstract start(): Promise<void>;
  abstract health(): RegistryHealth;
  abstract close(): Promise<void>;

  snapshot(): RegistrySnapshot {
    return this.current;
  }

  watch(listener: SnapshotListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Publishes a new service map; a listener that throws cannot stop the others. */
  protected publish(services: ReadonlyMap<string, ServiceRecord>): void {
    this.current = Object.freeze({ version: this.current.version + 1, services });
    this.lastSyncMs = Date.now();
    for (const l of this.listeners) {
      try {
        l(this.current);
      } catch {
        /* a watcher's bug must not break the registry */
      }
    }
  }
}
