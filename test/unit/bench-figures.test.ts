// The bench's arithmetic: wrk output parsing and ratios against baselines of the same generator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWrk } from '../../bench/load/wrk.js';
import { figuresOf } from '../../bench/report/figures.js';
import { renderTable } from '../../bench/report/table.js';
import { selectModes } from '../../bench/modes.js';
import type { RowResult } from '../../bench/run-bench.js';

const WRK = `Running 5s test @ http://127.0.0.1:4000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  300.00us   9.00ms   90.00%
    Req/Sec    15.20k   500.00    16.00k    70.00%
  76000 requests in 5.00s, 10.00MB read
  Non-2xx or 3xx responses: 1000
Requests/sec:  15200.00
Transfer/sec:      2.00MB
`;

test('wrk output: successful requests only, errors counted', () => {
  const r = parseWrk(WRK, 5);
  assert.equal(r.requests, 75000);
  assert.equal(r.errors, 1000);
  assert.equal(Math.round(r.rps), 15000);
});

test('wrk output that is not wrk is an error, not a zero', () => {
  assert.throws(() => parseWrk('command not found', 5), /unexpected wrk output/);
});

const tp = (rps: number) => ({ requests: rps, errors: 0, seconds: 1, rps });

test('ratios use the baseline measured by the same generator', () => {
  const rows: RowResult[] = [
    { mode: 'direct', title: 'd', group: 'baseline', keepAlive: { wrk: tp(40000), builtin: tp(10000) }, newConnection: { wrk: tp(8000) } },
    { mode: 'explicit', title: 'e', group: 'explicit', keepAlive: { wrk: tp(20000), builtin: tp(5000) }, newConnection: { wrk: tp(4000) } },
    { mode: 'explicit-unix', title: 'u', group: 'explicit', keepAlive: { builtin: tp(6000) } },
    { mode: 'haproxy', title: 'h', group: 'reference', skipped: 'haproxy is not installed' },
  ];
  const f = figuresOf(rows);
  assert.equal(f[1]!.keepAliveVsDirect, 0.5);
  assert.equal(f[2]!.keepAliveGenerator, 'builtin');
  assert.equal(f[2]!.keepAliveVsDirect, 0.6);
  assert.equal(f[2]!.keepAliveVsExplicit, 1.2);
  assert.equal(f[1]!.newConnVsDirect, 0.5);
  assert.equal(f[3]!.keepAliveVsDirect, undefined);
  const table = renderTable(f);
  assert.match(table, /explicit-unix\s+6,000\*\s+0\.60×\s+1\.20×/);
  assert.match(table, /haproxy\s+skipped: haproxy is not installed/);
});

test('--modes: names and groups resolve, baselines are always added, unknown names are refused', () => {
  assert.deepEqual(
    selectModes(['haproxy']).map((m) => m.name),
    ['direct', 'explicit', 'haproxy'],
  );
  assert.deepEqual(
    selectModes(['explicit']).map((m) => m.name),
    ['direct', 'explicit'],
  );
  assert.ok(selectModes(['reference']).some((m) => m.name === 'haproxy-tcp'));
  assert.throws(() => selectModes(['explicit', 'warp-drive']), /unknown mode warp-drive; known: direct, explicit/);
  assert.deepEqual(
    selectModes(undefined, true).map((m) => m.name),
    ['direct', 'explicit', 'explicit-unix', 'proxy', 'inbound', 'connect', 'haproxy', 'transparent-nftables'],
  );
});
