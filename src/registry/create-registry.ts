// Builds the registry a sidecar routes from, out of the config: the inline `services:` map
// merged with the file backend (registry.file) and/or the etcd backend (registry.etcd).
import type { MeshConfig } from '../config/schema.js';
import type { Registry, ServiceRecord } from './registry.js';
import { MemoryRegistry } from './memory-registry.js';
import { toServiceRecord } from './normalize.js';
import { FileRegistry } from './file-registry.js';
import { MergedRegistry } from './merged-registry.js';
import { EtcdRegistry } from './etcd-registry.js';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.js';

export interface RegistryDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** The records of the config's services: map. */
export function inlineRecords(config: MeshConfig): Map<string, ServiceRecord> {
  return new Map(Object.entries(config.services).map(([name, s]) => [name, toServiceRecord(name, s.endpoints)] as const));
}

export function inlineServices(config: MeshConfig): MemoryRegistry {
  return new MemoryRegistry(inlineRecords(config));
}

/** `inline` is the registry of the config's services: map, when the caller keeps it to replace on reload. */
export function createRegistry(config: MeshConfig, deps: RegistryDeps, inline: MemoryRegistry = inlineServices(config)): Registry {
  const sources: Registry[] = [inline];
  if (config.registry.file !== undefined) {
    sources.push(
      new FileRegistry(config.registry.file, deps.log, () => {
        deps.metrics.configReloadFailures.inc({ source: 'registry-file' });
        deps.metrics.registryRejected.inc({ backend: 'file' });
      }),
    );
  }
  if (config.registry.etcd !== undefined) {
    sources.push(new EtcdRegistry(config.registry.etcd, { log: deps.log, onRejected: () => deps.metrics.registryRejected.inc({ backend: 'etcd' }) }));
  }
  return sources.length === 1 ? sources[0]! : new MergedRegistry(sources);
}
