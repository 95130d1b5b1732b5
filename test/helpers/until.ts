// Waits for a condition that becomes true eventually (a watch, a reload, a lease expiry),
// polling briefly; fails the test naming what it waited for. Resolves with the time it took.
import assert from 'node:assert/strict';

export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 6000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}
