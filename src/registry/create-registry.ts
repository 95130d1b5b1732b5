// Builds the registry a sidecar routes from, out of the config: the inline `services:` map
// (and, when configured, the file and etcd backends).
import type { MeshConfig } from '../config/schema.js';
import type { Registry } from './registry.js';
import { MemoryRegistry } from './memory-registry.js';
import { toServiceRecord } from './normalize.js';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.js';

export interface RegistryDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
}

export function inlineServices(config: MeshConfig): MemoryRegistry {
  const m = new Map(Object.entries(config.services).map(([name, s]) => [name, toServiceRecord(name, s.endpoints)] as const));
  return new MemoryRegistry(m);
}

export function createRegistry(config: MeshConfig, _deps: RegistryDeps): Registry {
  return inlineServices(config);
}
