// Registry changes are applied incrementally: untouched services keep their cluster state,
// the endpoint index and the pools follow exactly what changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { parseConfigObject } from '../../src/config/load.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { toServiceRecord } from '../../src/registry/normalize.js';
import { ClusterManager } from '../../src/upstream/cluster-manager.js';

function setup(): { reg: MemoryRegistry; cm: ClusterManager } {
  const reg = new MemoryRegistry(
    new Map([
      ['users', toServiceRecord('users', ['10.0.0.1:80', '10.0.0.2:80'])],
      ['orders', toServiceRecord('orders', ['10.0.1.1:80', '10.0.0.2:80'])],
    ]),
  );
  const cm = new ClusterManager(parseConfigObject({}, 'test'), createMetrics(), pino({ level: 'silent' }));
  return { reg, cm };
}

test('a change to one service leaves the other clusters and their endpoint state alone', async () => {
  const { reg, cm } = setup();
  await reg.start();
  cm.attach(reg);
  const orders = cm.cluster('orders')!;
  const ordersStates = orders.endpointStates();
  await reg.put('users', { address: '10.0.0.3:80', weight: 1, labels: {} });
  assert.equal(cm.cluster('orders'), orders);
  assert.deepEqual(cm.cluster('orders')!.endpointStates(), ordersStates);
  assert.equal(cm.cluster('users')!.endpointStates().length, 3);
  assert.deepEqual(cm.table.resolve('10.0.0.3', 80), { kind: 'service', service: 'users' });
  cm.detach();
});

test('removed endpoints leave the index and close their pools; a shared address stays', async () => {
  const { reg, cm } = setup();
  await reg.start();
  cm.attach(reg);
  const soleUser = cm.pools.get({ host: '10.0.0.1', port: 80 }, 'users');
  const shared = cm.pools.get({ host: '10.0.0.2', port: 80 }, 'users');
  await reg.remove('users', '10.0.0.1:80');
  await reg.remove('users', '10.0.0.2:80');
  assert.equal(cm.cluster('users'), undefined);
  assert.deepEqual(cm.table.resolve('10.0.0.1', 80), { kind: 'external', host: '10.0.0.1', port: 80 });
  assert.deepEqual(cm.table.resolve('10.0.0.2', 80), { kind: 'service', service: 'orders' });
  assert.equal(soleUser.closed, true);
  assert.equal(cm.pools.get({ host: '10.0.0.2', port: 80 }, 'orders'), shared);
  assert.equal(shared.closed, false);
  cm.detach();
  cm.pools.closeAll(true);
});
