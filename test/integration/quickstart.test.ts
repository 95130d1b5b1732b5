// The README's first command must work: quickstart starts, routes, and stops on Ctrl-C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'undici';
import { CLI } from '../helpers/sidecar.js';

test('dreammesh quickstart prints curl lines that work, and exits 0 on SIGINT', async () => {
  // Below the ephemeral range (32768+), so no client socket of another test can hold these ports.
  const base = 20000 + Math.floor(Math.random() * 12000);
  const child = spawn(process.execPath, [CLI, 'quickstart', '--base-port', String(base)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout.resume();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no quickstart banner in 15 s: ${err}`)), 15_000);
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        if (err.includes('Ctrl-C stops everything')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`quickstart exited ${code}: ${err}`)));
    });
    assert.match(err, new RegExp(`curl -H 'Host: users' http://127\\.0\\.0\\.1:${base + 1}/hello`));
    const r = await request(`http://127.0.0.1:${base + 1}/hello`, { headers: { host: 'users', 'x-beta': 'yes' } });
    assert.equal(r.statusCode, 200);
    assert.deepEqual({ ...((await r.body.json()) as object), traceparent: undefined }, { service: 'users', version: 'v2', path: '/hello', traceparent: undefined });
  } finally {
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  }
});
