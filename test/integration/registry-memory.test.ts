// The memory backend against the shared registry conformance suite.
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { runRegistrySuite } from '../registry-conformance.js';

runRegistrySuite({
  name: 'memory',
  async create() {
    const registry = new MemoryRegistry();
    return {
      registry,
      put: (service, i) => registry.put(service, { address: i.address, weight: i.weight ?? 1, labels: i.labels ?? {} }),
      remove: (service, address) => registry.remove(service, address),
      putMalformed: (service) => registry.put(service, { address: 'not an address', weight: 1, labels: {} }),
      close: async () => {},
    };
  },
});
