// Which endpoints each split entry selects: an empty selector is "the rest", never "all".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSplit } from '../../src/routing/split.js';
import type { Endpoint } from '../../src/registry/registry.js';

const ep = (address: string, labels: Record<string, string>): Endpoint => ({ address, host: '127.0.0.1', port: Number(address.split(':')[1]), weight: 1, labels });
const fleet = [ep('127.0.0.1:1', { version: 'v1' }), ep('127.0.0.1:2', { version: 'v2' }), ep('127.0.0.1:3', {}), ep('127.0.0.1:4', { version: 'v2', zone: 'eu' })];
const selected = (f: ((e: Endpoint) => boolean) | null): string[] => fleet.filter((e) => f === null || f(e)).map((e) => e.address);

test('an entry with empty labels selects the endpoints no other entry selects', () => {
  const c = compileSplit([
    { labels: { version: 'v2' }, weight: 1 },
    { labels: {}, weight: 99 },
  ]);
  assert.deepEqual(selected(c.entries[0]!.filter), ['127.0.0.1:2', '127.0.0.1:4']);
  assert.deepEqual(selected(c.entries[1]!.filter), ['127.0.0.1:1', '127.0.0.1:3']);
  assert.equal(c.total, 100);
});

test('a split whose only entry is empty selects every endpoint', () => {
  assert.equal(compileSplit([{ labels: {}, weight: 1 }]).entries[0]!.filter, null);
});
