// Faults on either side of the HTTP/1 engine, at every entry (explicit, forward proxy, inbound) of
// a sidecar process:
// - upstream faults: non-HTTP bytes or a 200 KB response head → 502 MESH_ERR_UPSTREAM_PROTOCOL;
//   an upstream closing mid-response → the client sees a truncated response, never a complete one;
// - client faults at each stage (mid-head, mid-body, mid-response, garbage) → nothing counted
//   against an endpoint (20 of each: no ejection), the process alive and serving after each;
// - no socket left behind: downstream and CLOSE_WAIT sockets of the process return to zero.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { meshPerSuite, ENTRY_NAMES, finals, describeResult, errorCode, metricSum, via, type Mesh, type SocketReport, type Entry } from '../helpers/http1-mesh.js';
import { header, hostPort } from '../helpers/http1-wire.js';

/** Reads the response head and `after` body bytes of GET `path`, then destroys the connection. */
function closeMidResponse(e: Entry, path: string, after = 1): Promise<number> {
  const { host, port } = hostPort(e.address);
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = 0;
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, 5000);
    s.on('error', () => {});
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got > after) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.write(e.head('GET', path));
  });
}

describe('upstream faults', () => {
  let mesh: Mesh;
  let baseline: SocketReport;
  meshPerSuite((m, b) => {
    mesh = m;
    baseline = b;
  });
  for (const name of ENTRY_NAMES) {
    describe(`${name} entry`, () => {
      test('an upstream answering non-HTTP bytes: 502 MESH_ERR_UPSTREAM_PROTOCOL, promptly', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('GET', '/garbage') }], { untilResponses: 1, ms: 6000 });
        const f = finals(r)[0];
        assert.equal(f?.status, 502, describeResult(r));
        assert.equal(errorCode(f), 'MESH_ERR_UPSTREAM_PROTOCOL');
        assert.ok(r.ms < 2500, `answered after ${r.ms} ms, without waiting for the upstream to close (3 s)`);
        await mesh.alive(e);
      });

      test('an upstream answering a 200 KB response head: 502 MESH_ERR_UPSTREAM_PROTOCOL', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('GET', '/bighead') }], { untilResponses: 1, ms: 6000 });
        const f = finals(r)[0];
        assert.equal(f?.status, 502, describeResult(r));
        assert.equal(errorCode(f), 'MESH_ERR_UPSTREAM_PROTOCOL');
        await mesh.alive(e);
      });

      test('an upstream closing mid-response: the client sees a truncated response and a close, never a complete one', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('GET', '/truncate') }], { ms: 5000 });
        assert.ok(r.closed, `the client connection was closed: ${describeResult(r)}`);
        const f = finals(r)[0];
        if (f !== undefined && f.status === 200) {
          assert.equal(f.complete, false, 'the response is visibly truncated');
          assert.equal(header(f, 'content-length'), '1000');
          assert.ok(f.body.length < 1000);
        } else {
          assert.ok(f === undefined || f.status === 502, `nothing, or a 502 if nothing was sent yet: ${describeResult(r)}`);
        }
        await mesh.alive(e, 'after an upstream closed mid-response');
      });
    });
  }

  test('no socket is left behind by the upstream faults (no CLOSE_WAIT upstream socket either)', async () => {
    await mesh.alive();
    await mesh.noLeaks(baseline, 'after the upstream faults');
  });
});

describe('client faults', () => {
  let mesh: Mesh;
  let baseline: SocketReport;
  meshPerSuite((m, b) => {
    mesh = m;
    baseline = b;
  });

  for (const name of ENTRY_NAMES) {
    describe(`${name} entry`, () => {
      test('a client that closes mid-head', async () => {
        const e = mesh.entry(name);
        const h = e.head('GET', '/mid-head', [['X-Long', 'l'.repeat(200)]]);
        await via(e, [{ write: h.slice(0, 60) }, { wait: 50 }, { destroy: true }]);
        assert.equal(mesh.seenWith('/mid-head').length, 0);
        await mesh.alive(e, 'after a client closed mid-head');
      });

      test('a client that half-closes mid-head (FIN, no reset)', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: e.head('GET', '/fin-mid-head').slice(0, 30) }, { end: true }], { ms: 3000 });
        assert.ok(r.closed, `the sidecar closes its side too: ${describeResult(r)}`);
        await mesh.alive(e, 'after a client FIN mid-head');
      });

      test('a client that closes mid-body', async () => {
        const e = mesh.entry(name);
        await via(e, [{ write: e.head('POST', '/mid-body', [['Content-Length', '100000']]) + 'x'.repeat(1000) }, { wait: 100 }, { destroy: true }]);
        await mesh.alive(e, 'after a client closed mid-body');
      });

      test('a client that closes mid-chunked-body', async () => {
        const e = mesh.entry(name);
        await via(e, [{ write: e.head('POST', '/mid-chunk', [['Transfer-Encoding', 'chunked']]) + '400\r\n' + 'y'.repeat(100) }, { wait: 100 }, { destroy: true }]);
        await mesh.alive(e, 'after a client closed mid-chunk');
      });

      test('a client that closes mid-response (8 MB body)', async () => {
        const e = mesh.entry(name);
        const got = await closeMidResponse(e, '/big/8000000', 1000);
        assert.ok(got > 0, 'some of the response arrived');
        await mesh.alive(e, 'after a client closed mid-response');
      });

      test('a client that sends garbage bytes: a 400 or a clean close', async () => {
        const e = mesh.entry(name);
        const r = await via(e, [{ write: Buffer.from('GARBAGE\x00\x01\r\n\r\n', 'latin1') }], { ms: 3000 });
        const f = finals(r)[0];
        assert.ok(f === undefined ? r.closed : f.status === 400, describeResult(r));
        if (f) assert.equal(errorCode(f), 'MESH_ERR_BAD_REQUEST');
        await mesh.alive(e);
      });
    });
  }

  test('20 clients closing mid-body and 20 mid-response through explicit and proxy: no endpoint counted as failed or ejected', async () => {
    const ej0 = metricSum(await mesh.metrics(), 'dreammesh_endpoint_ejections_total');
    for (const name of ['explicit', 'proxy'] as const) {
      const e = mesh.entry(name);
      for (let i = 0; i < 20; i++) {
        await via(e, [{ write: e.head('POST', `/abort-body/${i}`, [['Content-Length', '50000']]) + 'z'.repeat(500) }, { wait: 20 }, { destroy: true }]);
        await closeMidResponse(e, '/big/4000000', 100);
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    const eps = await mesh.endpoints();
    assert.equal(eps.length, 2);
    for (const ep of eps) {
      assert.ok(ep.healthy, `endpoint ${ep.address} was ejected for a client's fault: ${JSON.stringify(ep)}`);
      assert.equal(ep.consecutiveFailures, 0, `client aborts counted against ${ep.address}: ${JSON.stringify(ep)}`);
    }
    assert.equal(metricSum(await mesh.metrics(), 'dreammesh_endpoint_ejections_total'), ej0);
    await mesh.alive();
  });

  test('no socket is left behind by the client faults', async () => {
    await mesh.alive();
    await mesh.noLeaks(baseline, 'after the client faults');
  });
});
