// Per-call routing and retries for gRPC: route rules match the method path
// (/package.Service/Method) and metadata headers, weighted splits choose per call over one
// channel, and a call is retried on another endpoint only where nothing was processed: the
// upstream refused the stream (REFUSED_STREAM) or the connect failed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, constants, type Http2Server } from 'node:http2';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricSum } from '../helpers/http1-mesh.js';
import { deadPort } from '../helpers/upstream.js';
import { startGrpcServers, echoClient, unary, grpc, type GrpcServers, type Msg } from '../helpers/grpc-mesh.js';

let servers: GrpcServers;
let refusing: Http2Server;
let refused = 0;
let mesh: SpawnedSidecar;

before(async () => {
  servers = await startGrpcServers(3);
  // An HTTP/2 server that refuses every stream before processing it.
  refusing = createServer();
  refusing.on('stream', (s) => {
    refused += 1;
    s.on('error', () => {});
    s.close(constants.NGHTTP2_REFUSED_STREAM);
  });
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  const dead = await deadPort();
  const [a, b, c] = servers.addresses;
  const ep = (address: string, version: string): Record<string, unknown> => ({ address, labels: { version }, protocol: 'http2' });
  mesh = await spawnSidecar({
    lb: 'round-robin',
    retries: { attempts: 2, minPerSecond: 100 },
    services: {
      echo: {
        endpoints: [ep(a!, 'v1'), ep(b!, 'v2'), ep(c!, 'v2')],
        routes: [
          { name: 'canary', match: { pathPrefix: '/mesh.Echo/', headers: { 'x-canary': 'yes' } }, split: [{ labels: { version: 'v2' }, weight: 1 }] },
          { name: 'unary-v1', match: { pathPrefix: '/mesh.Echo/Unary' }, split: [{ labels: { version: 'v1' }, weight: 1 }] },
          { name: 'rest', match: {} },
        ],
      },
      halves: {
        endpoints: [ep(a!, 'v1'), ep(b!, 'v2')],
        routes: [
          {
            name: 'half',
            match: {},
            split: [
              { labels: { version: 'v1' }, weight: 1 },
              { labels: { version: 'v2' }, weight: 1 },
            ],
          },
        ],
      },
      flaky: {
        endpoints: [
          { address: `127.0.0.1:${(refusing.address() as { port: number }).port}`, protocol: 'http2' },
          { address: `127.0.0.1:${dead}`, protocol: 'http2' },
          { address: c!, protocol: 'http2' },
        ],
      },
    },
  });
});

after(async () => {
  await mesh?.stop();
  await servers?.stop();
  refusing?.close();
});

async function serversOf(authority: string, n: number, md?: grpc.Metadata): Promise<number[]> {
  const c = echoClient(mesh.outbound, authority);
  const seen = [0, 0, 0];
  try {
    for (let i = 0; i < n; i++) {
      const r: Msg = await unary(c, { text: String(i) }, 10_000, md ?? new grpc.Metadata());
      seen[r.server!]! += 1;
    }
  } finally {
    c.close();
  }
  return seen;
}

test('route rules match the method path: /mesh.Echo/Unary goes to v1 only', async () => {
  assert.deepEqual(await serversOf('echo', 12), [12, 0, 0]);
});

test('route rules match metadata headers: x-canary: yes goes to the v2 subset, spread over both', async () => {
  const md = new grpc.Metadata();
  md.set('x-canary', 'yes');
  const seen = await serversOf('echo', 20, md);
  assert.equal(seen[0], 0);
  assert.ok(seen[1]! > 0 && seen[2]! > 0, seen.join(','));
});

test('a weighted split is chosen per call over one channel', async () => {
  const seen = await serversOf('halves', 60);
  assert.ok(seen[0]! >= 10 && seen[1]! >= 10, `both halves: ${seen.join(',')}`);
});

test('REFUSED_STREAM and connect failures are retried elsewhere: every call succeeds', async () => {
  const seen = await serversOf('flaky', 15);
  assert.equal(seen[2], 15, 'all answered by the one working endpoint');
  assert.ok(refused > 0, 'the refusing endpoint was tried');
  const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
  assert.ok(metricSum(m, 'dreammesh_retries_total', { service: 'flaky', outcome: 'attempted' }) >= 5);
  assert.equal(metricSum(m, 'dreammesh_grpc_calls_total', { service: 'flaky', grpc_status: '14' }), 0);
});
