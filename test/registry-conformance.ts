// One conformance suite every registry backend runs (memory, file, etcd): what routing may
// rely on, whatever the source of truth. A backend's test file supplies a harness that changes
// the source of truth the way an outside writer would (API, file edit, etcdctl).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Registry, RegistrySnapshot } from '../src/registry/registry.js';

export interface InstanceSpec {
  readonly address: string;
  readonly weight?: number;
  readonly labels?: Record<string, string>;
}

export interface RegistryHarness {
  /** The registry under test, not started yet. */
  readonly registry: Registry;
  /** Adds or replaces an instance (by address) of a service, as an outside writer. */
  put(service: string, instance: InstanceSpec): Promise<void>;
  remove(service: string, address: string): Promise<void>;
  /** Writes one malformed record for `service` (bad address, bad JSON, ... as the backend allows). */
  putMalformed(service: string): Promise<void>;
  close(): Promise<void>;
}

export interface RegistrySuiteOptions {
  readonly name: string;
  create(): Promise<RegistryHarness>;
  /** How long a change may take to show (default 5 s). */
  readonly timeoutMs?: number;
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

const addresses = (s: RegistrySnapshot, service: string): string[] => (s.services.get(service)?.endpoints ?? []).map((e) => e.address).sort();

export function runRegistrySuite(opts: RegistrySuiteOptions): void {
  const ms = opts.timeoutMs ?? 5000;
  const withHarness = (name: string, fn: (h: RegistryHarness) => Promise<void>): void => {
    test(`${opts.name} registry: ${name}`, async () => {
      const h = await opts.create();
      try {
        await fn(h);
      } finally {
        await h.registry.close();
        await h.close();
      }
    });
  };

  withHarness('adds and removes instances', async (h) => {
    await h.put('alpha', { address: '127.0.0.1:7001' });
    await h.registry.start();
    const r = h.registry;
    await until('alpha at start', () => addresses(r.snapshot(), 'alpha').length === 1, ms);
    await h.put('alpha', { address: '127.0.0.1:7002' });
    await h.put('beta', { address: '127.0.0.1:7003' });
    await until('second alpha instance and beta', () => addresses(r.snapshot(), 'alpha').length === 2 && r.snapshot().services.has('beta'), ms);
    assert.deepEqual(addresses(r.snapshot(), 'alpha'), ['127.0.0.1:7001', '127.0.0.1:7002']);
    await h.remove('alpha', '127.0.0.1:7001');
    await until('alpha 7001 removed', () => addresses(r.snapshot(), 'alpha').join() === '127.0.0.1:7002', ms);
    await h.remove('beta', '127.0.0.1:7003');
    await until('beta gone once its last instance left', () => !r.snapshot().services.has('beta'), ms);
    const ep = r.snapshot().services.get('alpha')!.endpoints[0]!;
    assert.equal(ep.host, '127.0.0.1');
    assert.equal(ep.port, 7002);
    assert.equal(ep.weight, 1, 'weight defaults to 1');
  });

  withHarness('updates weight and labels in place', async (h) => {
    await h.put('alpha', { address: '127.0.0.1:7001', labels: { version: 'v1' } });
    await h.registry.start();
    const r = h.registry;
    await until('alpha v1', () => r.snapshot().services.get('alpha')?.endpoints[0]?.labels.version === 'v1', ms);
    await h.put('alpha', { address: '127.0.0.1:7001', weight: 5, labels: { version: 'v2', zone: 'b' } });
    await until('alpha v2', () => r.snapshot().services.get('alpha')?.endpoints[0]?.labels.version === 'v2', ms);
    const eps = r.snapshot().services.get('alpha')!.endpoints;
    assert.equal(eps.length, 1, 'an update replaces the instance, not adds one');
    assert.equal(eps[0]!.weight, 5);
    assert.deepEqual({ ...eps[0]!.labels }, { version: 'v2', zone: 'b' });
  });

  withHarness('watchers see every change in order, versions increasing', async (h) => {
    await h.registry.start();
    const r = h.registry;
    const seen: RegistrySnapshot[] = [];
    const unwatch = r.watch((s) => seen.push(s));
    await h.put('alpha', { address: '127.0.0.1:7001', labels: { step: '1' } });
    await until('step 1', () => r.snapshot().services.get('alpha')?.endpoints[0]?.labels.step === '1', ms);
    await h.put('alpha', { address: '127.0.0.1:7001', labels: { step: '2' } });
    await until('step 2', () => r.snapshot().services.get('alpha')?.endpoints[0]?.labels.step === '2', ms);
    await h.put('beta', { address: '127.0.0.1:7002' });
    await h.remove('alpha', '127.0.0.1:7001');
    await until('final state', () => !r.snapshot().services.has('alpha') && r.snapshot().services.has('beta'), ms);
    unwatch();
    const after = seen.length;
    await h.put('gamma', { address: '127.0.0.1:7003' });
    await until('gamma', () => r.snapshot().services.has('gamma'), ms);
    assert.equal(seen.length, after, 'an unsubscribed watcher is not called');
    assert.ok(seen.length >= 3, `at least one snapshot per awaited change (saw ${seen.length})`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.version > seen[i - 1]!.version, 'versions strictly increase');
    // Order: step 2 never precedes step 1, and once alpha is gone it does not come back.
    const steps = seen.map((s) => s.services.get('alpha')?.endpoints[0]?.labels.step ?? 'gone');
    const firstTwo = steps.indexOf('2');
    assert.ok(steps.indexOf('1') < firstTwo, `step 1 seen before step 2 (${steps.join(',')})`);
    assert.ok(!steps.slice(firstTwo).includes('1'), `no step 1 after step 2 (${steps.join(',')})`);
    const gone = steps.indexOf('gone', firstTwo);
    assert.ok(gone > 0 && steps.slice(gone).every((x) => x === 'gone'), `alpha stays gone (${steps.join(',')})`);
    // Snapshots handed out are immutable values: an old one still shows its old state.
    assert.equal(seen[0]!.services.get('alpha')?.endpoints[0]?.labels.step, '1');
  });

  withHarness('a malformed record is rejected and counted without poisoning the snapshot', async (h) => {
    await h.put('alpha', { address: '127.0.0.1:7001' });
    await h.registry.start();
    const r = h.registry;
    await until('alpha', () => r.snapshot().services.has('alpha'), ms);
    const before = r.health().rejected;
    await h.putMalformed('broken').catch(() => {});
    await until('the malformed record to be counted', () => r.health().rejected > before, ms);
    assert.equal(r.snapshot().services.has('broken'), false, 'nothing of the malformed record is routed');
    assert.deepEqual(addresses(r.snapshot(), 'alpha'), ['127.0.0.1:7001'], 'the rest of the snapshot stands');
    // The registry keeps working after the bad record.
    await h.put('beta', { address: '127.0.0.1:7002' });
    await until('beta after the bad record', () => r.snapshot().services.has('beta'), ms);
    assert.deepEqual(addresses(r.snapshot(), 'alpha'), ['127.0.0.1:7001']);
    assert.equal(r.snapshot().services.has('broken'), false);
  });
}
