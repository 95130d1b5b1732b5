// The retry budget counts requests: retries may add budgetPercent of the recent request volume
// (plus minPerSecond). With a floor of 0 a 100% budget lets every failed connect be retried on
// the live endpoint; a 0% budget lets none be, and says so in dreammesh_retries_total.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, deadPort, type TestUpstream } from '../helpers/upstream.js';
import { viaSidecar, getJson, metricValue } from '../helpers/http.js';

let live: TestUpstream;
let dead: number;
before(async () => {
  live = await startUpstream('live');
  dead = await deadPort();
});
after(async () => {
  await live.close();
});

async function run(budgetPercent: number): Promise<{ ok: number; exhausted: number; attempted: number; mesh: RunningSidecar }> {
  const mesh = await startSidecar({
    lb: 'round-robin',
    // Ejection would hide the dead endpoint after a few failures; keep it in rotation.
    outlier: { consecutiveFailures: 1000 },
    retries: { attempts: 1, budgetPercent, minPerSecond: 0 },
    services: { users: { endpoints: [`127.0.0.1:${dead}`, live.address] } },
  });
  let ok = 0;
  for (let i = 0; i < 20; i++) if ((await viaSidecar(mesh.outbound, 'users')).status === 200) ok += 1;
  const m = await fetch(`http://${mesh.admin}/metrics`).then((r) => r.text());
  return {
    ok,
    exhausted: metricValue(m, 'dreammesh_retries_total', { service: 'users', outcome: 'budget-exhausted' }),
    attempted: metricValue(m, 'dreammesh_retries_total', { service: 'users', outcome: 'attempted' }),
    mesh,
  };
}

test('a 100% budget with no floor retries every failed connect on the live endpoint', async () => {
  const r = await run(100);
  try {
    assert.equal(r.ok, 20, 'every request answered');
    assert.equal(r.exhausted, 0);
    assert.ok(r.attempted >= 9, `retries attempted: ${r.attempted}`);
  } finally {
    await r.mesh.stop();
  }
});

test('a 0% budget with no floor retries nothing: the requests sent to the dead endpoint fail', async () => {
  const r = await run(0);
  try {
    assert.equal(r.attempted, 0);
    assert.ok(r.exhausted >= 9, `budget-exhausted: ${r.exhausted}`);
    assert.ok(r.ok <= 11 && r.ok >= 9, `answered: ${r.ok}`);
    assert.equal((await getJson(`http://${r.mesh.admin}/live`)).status, 200);
  } finally {
    await r.mesh.stop();
  }
});
