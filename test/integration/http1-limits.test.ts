// Timeouts and limits of the HTTP/1 engine, at every entry they apply to, against a sidecar
// process: timeouts.requestHeaderMs (slowloris → 408 MESH_ERR_REQUEST_HEADER_TIMEOUT, then close),
// timeouts.downstreamIdleMs (idle keep-alive closed; a body stalled after one byte → 408
// MESH_ERR_DOWNSTREAM_TIMEOUT and the endpoint not counted as failed), timeouts.requestMs (504
// MESH_ERR_UPSTREAM_TIMEOUT on time), limits.maxDownstreamConnections (closed at accept, counted,
// /ready still answers), limits.maxPendingRequests (503 MESH_ERR_LIMIT_EXCEEDED at once), and the
// defaults of the new fields. Timing bounds are loose on purpose (a shared 2-core machine).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startMesh, ENTRY_NAMES, finals, describeResult, errorCode, metricSum, via, type Mesh, type SocketReport } from '../helpers/http1-mesh.js';
import { hostPort, rawRequest } from '../helpers/http1-wire.js';

function hold(address: string, n: number): Promise<Socket[]> {
  const { host, port } = hostPort(address);
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect({ host, port }, () => resolve(s));
          s.on('error', reject);
        }),
    ),
  );
}

describe('defaults of the new fields (admin /config)', () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await startMesh({ endpoints: 1 });
  });
  after(async () => {
    await mesh?.stop();
  });
  test('timeouts.requestHeaderMs 10000, timeouts.downstreamIdleMs 60000, limits.maxHeaderCount 100, limits.maxDownstreamConnections set', async () => {
    const r = await mesh.admin('/config');
    // /config answers { version, loadedAt, source, config }.
    const cfg = (JSON.parse(r.responses[0]?.body.toString() ?? '{}') as { config: { timeouts: Record<string, unknown>; limits: Record<string, unknown>; outlier: Record<string, unknown> } }).config;
    assert.equal(cfg.timeouts.requestHeaderMs, 10000);
    assert.equal(cfg.timeouts.downstreamIdleMs, 60000);
    assert.equal(cfg.limits.maxHeaderCount, 100);
    assert.equal(cfg.limits.maxHeaderBytes, 16384);
    assert.equal(typeof cfg.limits.maxDownstreamConnections, 'number');
    assert.ok((cfg.limits.maxDownstreamConnections as number) > 0);
    assert.equal(cfg.outlier.consecutiveFailures, 5);
  });
});

describe('header and idle timeouts (requestHeaderMs 1000, downstreamIdleMs 1500)', () => {
  let mesh: Mesh;
  let baseline: SocketReport;
  before(async () => {
    mesh = await startMesh({ cfg: { timeouts: { requestHeaderMs: 1000, downstreamIdleMs: 1500 } } });
    await mesh.alive();
    baseline = await mesh.quietSockets();
  });
  after(async () => {
    await mesh?.stop();
  });

  for (const name of ENTRY_NAMES) {
    describe(`${name} entry`, () => {
      test('slowloris (1 byte per 200 ms): 408 MESH_ERR_REQUEST_HEADER_TIMEOUT, then close', async () => {
        const e = mesh.entry(name);
        const c0 = metricSum(await mesh.metrics(), 'dreammesh_requests_total', { code: '408' });
        const r = await via(e, [{ dribble: e.head('GET', '/slowloris', [['X-Padding', 'x'.repeat(40)]]), gapMs: 200 }], { ms: 6000 });
        const f = finals(r)[0];
        assert.equal(f?.status, 408, describeResult(r));
        assert.equal(errorCode(f), 'MESH_ERR_REQUEST_HEADER_TIMEOUT');
        assert.ok(r.closed, 'closed after the 408');
        assert.ok(r.ms >= 800 && r.ms < 4000, `answered after ${r.ms} ms (limit 1000)`);
        assert.equal(mesh.seenWith('/slowloris').length, 0);
        assert.equal(metricSum(await mesh.metrics(), 'dreammesh_requests_total', { code: '408' }), c0 + 1, 'the 408 was counted');
        await mesh.alive(e);
      });

      test('a head in a few pieces well within the limit is served', async () => {
        const e = mesh.entry(name);
        const h = e.head('GET', '/pieces');
        const steps = [0, 1, 2, 3].map((i) => ({ write: h.slice((i * h.length) / 4, ((i + 1) * h.length) / 4) }));
        const r = await via(
          e,
          steps.flatMap((s) => [s, { wait: 100 }]),
          { untilResponses: 1 },
        );
        assert.equal(finals(r)[0]?.status, 200, describeResult(r));
      });

      test('a connection that sends nothing is closed (header or idle timeout)', async () => {
        const e = mesh.entry(name);
        const r = await rawRequest(e.address, [], { ms: 6000 });
        assert.ok(r.closed, `closed: ${describeResult(r)}`);
        assert.ok(r.ms < 4500, `closed after ${r.ms} ms`);
      });

      test('an idle keep-alive connection is closed after downstreamIdleMs', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('GET', '/idle') }], { ms: 8000 });
        assert.equal(finals(r)[0]?.status, 200, describeResult(r));
        assert.ok(r.closed, 'the idle connection was closed');
        assert.ok(r.ms >= 1300 && r.ms < 5000, `closed after ${r.ms} ms (idle limit 1500)`);
      });

      test('a slow upstream (2.5 s) is not a downstream idle: the response arrives', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('GET', '/slow/2500') }], { untilResponses: 1, ms: 6000 });
        assert.equal(finals(r)[0]?.status, 200, `waiting for the upstream must not count as the client being idle: ${describeResult(r)}`);
      });

      test('the header timeout applies to every request of a keep-alive connection', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('GET', '/first') }, { awaitResponses: 1 }, { dribble: e.head('GET', '/second-slowloris', [['X-Pad', 'y'.repeat(30)]]), gapMs: 200 }], { ms: 8000 });
        const f = finals(r);
        assert.equal(f[0]?.status, 200, describeResult(r));
        assert.equal(f[1]?.status, 408, `the second, slow head: ${describeResult(r)}`);
        assert.equal(errorCode(f[1]), 'MESH_ERR_REQUEST_HEADER_TIMEOUT');
        assert.ok(r.closed);
      });

      test('a body stalled after one byte: 408 MESH_ERR_DOWNSTREAM_TIMEOUT, close, and the endpoint is not counted as failed', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('POST', '/stalled', [['Content-Length', '100']]) + 'x' }], { ms: 8000 });
        const f = finals(r)[0];
        assert.equal(f?.status, 408, describeResult(r));
        assert.equal(errorCode(f), 'MESH_ERR_DOWNSTREAM_TIMEOUT');
        assert.ok(r.closed);
        assert.ok(r.ms >= 1300 && r.ms < 5000, `cut after ${r.ms} ms (idle limit 1500)`);
        for (const ep of await mesh.endpoints()) {
          assert.equal(ep.consecutiveFailures, 0, `a client's stall counted against ${ep.address}`);
          assert.ok(ep.healthy);
        }
        await mesh.alive(e);
      });
    });
  }

  test('no socket is left behind by slowloris, idle and stalled connections', async () => {
    await mesh.noLeaks(baseline, 'after the timeouts');
  });
});

describe('timeouts.requestMs 300 with an upstream that never answers', () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await startMesh({ cfg: { timeouts: { requestMs: 300 } } });
  });
  after(async () => {
    await mesh?.stop();
  });
  for (const name of ENTRY_NAMES) {
    test(`${name}: 504 MESH_ERR_UPSTREAM_TIMEOUT after about 300 ms`, async () => {
      const e = mesh.entry(name);
      const t0 = Date.now();
      const r = await via(e, [{ write: e.head('GET', '/never') }], { untilResponses: 1, ms: 5000 });
      const ms = Date.now() - t0;
      const f = finals(r)[0];
      assert.equal(f?.status, 504, describeResult(r));
      assert.equal(errorCode(f), 'MESH_ERR_UPSTREAM_TIMEOUT');
      assert.ok(ms >= 280 && ms <= 1000, `answered after ${ms} ms (requestMs 300)`);
      await mesh.alive(e);
    });
  }
});

describe('limits.maxDownstreamConnections 20 (per listener)', () => {
  let mesh: Mesh;
  let baseline: SocketReport;
  before(async () => {
    mesh = await startMesh({ endpoints: 1, cfg: { limits: { maxDownstreamConnections: 20 } } });
    await mesh.alive();
    baseline = await mesh.quietSockets();
  });
  after(async () => {
    await mesh?.stop();
  });
  for (const [listener, name] of [
    ['outbound', 'explicit'],
    ['inbound', 'inbound'],
  ] as const) {
    test(`${listener}: beyond 20 open connections a new one is closed at accept and counted; /ready answers; the other listener is not affected`, async () => {
      const e = mesh.entry(name);
      const other = mesh.entry(name === 'explicit' ? 'inbound' : 'explicit');
      const before = metricSum(await mesh.metrics(), 'dreammesh_downstream_connections_rejected_total', { listener });
      const held = await hold(e.address, 20);
      try {
        await new Promise((r) => setTimeout(r, 200));
        const r = await via(e, [{ write: e.head('GET', '/over-the-cap') }], { ms: 3000 });
        assert.ok(r.closed, `the 21st connection was closed: ${describeResult(r)}`);
        assert.equal(finals(r).length, 0, `no response on it: ${describeResult(r)}`);
        assert.equal(mesh.seenWith('/over-the-cap').length, 0);
        const ready = await mesh.admin('/ready');
        assert.equal(ready.responses[0]?.status, 200, 'admin /ready still answers');
        await mesh.alive(other, `the ${other.name} listener has its own cap`);
        const after = metricSum(await mesh.metrics(), 'dreammesh_downstream_connections_rejected_total', { listener });
        assert.ok(after >= before + 1, `dreammesh_downstream_connections_rejected_total{listener="${listener}"} went from ${before} to ${after}`);
      } finally {
        for (const s of held) s.destroy();
      }
      await new Promise((r) => setTimeout(r, 200));
      await mesh.alive(e, 'after the held connections closed');
    });
  }

  test('no socket is left behind by the held and refused connections', async () => {
    await mesh.noLeaks(baseline, 'after the connection cap');
  });
});

describe('the default connection cap against 4,300 idle connections (the fd exhaustion of issue 11)', () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await startMesh({ endpoints: 1 });
    await mesh.alive();
  });
  after(async () => {
    await mesh?.stop();
  });
  test('beyond limits.maxDownstreamConnections (default 4096) connections are closed at accept and counted; /ready and the inbound listener keep answering', async (t) => {
    const cfg = (JSON.parse((await mesh.admin('/config')).responses[0]?.body.toString() ?? '{}') as { config?: { limits?: { maxDownstreamConnections?: number } } }).config;
    const cap = cfg?.limits?.maxDownstreamConnections ?? 4096;
    if (cap > 4096) return t.skip(`the default cap is ${cap}`);
    const e = mesh.entry('explicit');
    const { host, port } = hostPort(e.address);
    const before = metricSum(await mesh.metrics(), 'dreammesh_downstream_connections_rejected_total', { listener: 'outbound' });
    const held: Socket[] = [];
    try {
      for (let i = 0; i < cap + 200; i += 100) {
        const batch = await Promise.all(
          Array.from(
            { length: 100 },
            () =>
              new Promise<Socket>((resolve) => {
                const s = connect({ host, port });
                s.on('error', () => {});
                s.once('connect', () => resolve(s));
                s.once('close', () => resolve(s));
              }),
          ),
        );
        held.push(...batch);
      }
      await new Promise((r) => setTimeout(r, 500));
      const open = held.filter((s) => !s.destroyed && s.readyState === 'open').length;
      assert.ok(open <= cap + 5, `${open} connections stayed open (cap ${cap})`);
      const ready = await mesh.admin('/ready');
      assert.equal(ready.responses[0]?.status, 200, 'admin /ready answers while the outbound listener is full');
      await mesh.alive('inbound', 'the inbound listener serves while the outbound one is full');
      const after = metricSum(await mesh.metrics(), 'dreammesh_downstream_connections_rejected_total', { listener: 'outbound' });
      assert.ok(after - before >= held.length - cap - 5, `rejections counted: ${after - before} for ${held.length - cap} over the cap`);
    } finally {
      for (const s of held) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 300));
    await mesh.alive('explicit', 'after the idle connections left');
  });
});

describe('limits.maxPendingRequests 10 with maxConnectionsPerEndpoint 2 and a slow upstream', () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await startMesh({ endpoints: 1, cfg: { limits: { maxConnectionsPerEndpoint: 2, maxPendingRequests: 10 } } });
    await mesh.alive();
  });
  after(async () => {
    await mesh?.stop();
  });
  for (const name of ['explicit', 'inbound'] as const) {
    test(`${name}: 50 concurrent requests: the excess get 503 MESH_ERR_LIMIT_EXCEEDED long before the upstream answers; the rest succeed`, async () => {
      const e = mesh.entry(name);
      const t0 = Date.now();
      const results = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const r = await via(e, [{ write: e.head('GET', `/slow/800?n=${i}`) }], { untilResponses: 1, ms: 10_000 });
          return { status: finals(r)[0]?.status ?? 0, code: errorCode(finals(r)[0]), ms: Date.now() - t0, raw: describeResult(r) };
        }),
      );
      const ok = results.filter((r) => r.status === 200);
      const shed = results.filter((r) => r.status === 503);
      const other = results.filter((r) => r.status !== 200 && r.status !== 503);
      assert.deepEqual(
        other.map((r) => r.raw),
        [],
        'every request got a 200 or a 503',
      );
      assert.ok(shed.length >= 50 - 12 - 2, `${shed.length} shed (2 active + 10 pending may wait; about 38 must be shed)`);
      assert.ok(ok.length >= 2, `${ok.length} succeeded`);
      for (const r of shed) {
        assert.equal(r.code, 'MESH_ERR_LIMIT_EXCEEDED');
        assert.ok(r.ms < 700, `a 503 came after ${r.ms} ms: it must not wait for the upstream (800 ms)`);
      }
      await mesh.alive(e);
    });
  }
});
