// The file backend against the shared registry conformance suite: the harness edits the YAML
// file the way an operator would (whole-file rewrites).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { runRegistrySuite, type InstanceSpec } from '../registry-conformance.js';

runRegistrySuite({
  name: 'file',
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'dm-file-conformance-'));
    const file = join(dir, 'services.yaml');
    const model = new Map<string, Map<string, InstanceSpec>>();
    const write = async (extra: Record<string, unknown> = {}): Promise<void> => {
      const services: Record<string, unknown> = {};
      for (const [name, eps] of model) if (eps.size > 0) services[name] = { endpoints: [...eps.values()] };
      await writeFile(file, stringify({ services: { ...services, ...extra } }));
    };
    await write();
    const registry = new FileRegistry(file, pino({ level: 'silent' }), () => {});
    return {
      registry,
      put: async (service, i) => {
        if (!model.has(service)) model.set(service, new Map());
        model.get(service)!.set(i.address, i);
        await write();
      },
      remove: async (service, address) => {
        model.get(service)?.delete(address);
        await write();
      },
      putMalformed: (service) => write({ [service]: { endpoints: [{ address: '127.0.0.1:7009', weight: 'heavy' }] } }),
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
});
