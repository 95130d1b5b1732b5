import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from '../../src/config/load.js';
import { restartOnly } from '../../src/config/reload-plan.js';

const prev = parseConfigObject({ service: 'users', app: '127.0.0.1:8080', transparent: { detectTimeoutMs: 100 }, egress: { policy: 'registry-only' } });

test('a reload takes everything but the restart-only sections, and names those it kept', () => {
  const next = parseConfigObject({ service: 'orders', app: '127.0.0.1:8080', transparent: { detectTimeoutMs: 300 }, egress: { policy: 'allow-any' }, logLevel: 'debug' });
  const { config, kept } = restartOnly(prev, next, { registered: false });
  assert.deepEqual(kept, ['transparent', 'service']);
  assert.equal(config.service, 'users');
  assert.equal(config.transparent.detectTimeoutMs, 100);
  assert.equal(config.egress.policy, 'allow-any');
  assert.equal(config.logLevel, 'debug');
  assert.ok(Object.isFrozen(config));
});

test('a registered instance keeps its inbound address (and app) until restart; an unregistered one moves', () => {
  const next = parseConfigObject({ service: 'users', app: '127.0.0.1:9090', listeners: { inbound: '127.0.0.1:16006' }, transparent: { detectTimeoutMs: 100 }, egress: { policy: 'registry-only' } });
  const registered = restartOnly(prev, next, { registered: true });
  assert.deepEqual(registered.kept, ['listeners.inbound']);
  assert.equal(registered.config.listeners.inbound, '0.0.0.0:15006');
  assert.equal(registered.config.app, '127.0.0.1:8080');
  const free = restartOnly(prev, next, { registered: false });
  assert.deepEqual(free.kept, []);
  assert.equal(free.config.listeners.inbound, '127.0.0.1:16006');
});
