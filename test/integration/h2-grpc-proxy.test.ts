// gRPC in proxy mode: grpc-js honours grpc_proxy / http_proxy by opening a CONNECT tunnel to
// the target and speaking h2c inside it. When the CONNECT names a mesh service the sidecar
// terminates that HTTP/2 connection and balances each call, instead of pinning the channel to
// one endpoint. The client runs in a child process (grpc-js reads the env at channel creation).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricSum } from '../helpers/http1-mesh.js';
import { startGrpcServers, echoConfig, type GrpcServers } from '../helpers/grpc-mesh.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('../helpers/grpc-client-main.js', import.meta.url));
let servers: GrpcServers;
let mesh: SpawnedSidecar;

before(async () => {
  servers = await startGrpcServers(3);
  mesh = await spawnSidecar(echoConfig(servers.addresses));
});

after(async () => {
  await mesh?.stop();
  await servers?.stop();
});

async function client(env: Record<string, string>, target: string, n: number): Promise<{ seen?: number[]; error?: unknown }> {
  const clean = { ...process.env };
  for (const k of ['grpc_proxy', 'http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'no_grpc_proxy', 'no_proxy', 'NO_PROXY']) delete clean[k];
  const r = await run(process.execPath, [CLIENT, target, String(n)], { env: { ...clean, ...env }, timeout: 60_000 });
  return JSON.parse(r.stdout) as { seen?: number[]; error?: unknown };
}

for (const variable of ['grpc_proxy', 'http_proxy']) {
  test(`${variable}: 60 unary calls over one channel through CONNECT reach all three servers`, async () => {
    const before = metricSum(await (await fetch(`${mesh.adminUrl}/metrics`)).text(), 'dreammesh_tunnels_total', { mode: 'proxy', outcome: 'http2' });
    const r = await client({ [variable]: `http://${mesh.outbound}` }, 'echo:50051', 60);
    assert.ok(r.seen, JSON.stringify(r));
    for (const [i, n] of r.seen.entries()) assert.ok(n >= 5, `server ${i} got ${n} of 60: ${r.seen.join(',')}`);
    const m = await (await fetch(`${mesh.adminUrl}/metrics`)).text();
    assert.equal(metricSum(m, 'dreammesh_tunnels_total', { mode: 'proxy', outcome: 'http2' }) - before, 1, 'one CONNECT, terminated as HTTP/2');
    assert.ok(metricSum(m, 'dreammesh_grpc_calls_total', { mode: 'proxy', service: 'echo', grpc_status: '0' }) >= 60);
  });
}

test('proxy mode: a CONNECT naming an unknown host is refused (egress), and grpc-js reports UNAVAILABLE', async () => {
  const r = await client({ grpc_proxy: `http://${mesh.outbound}` }, 'nosuch.example:50051', 1);
  assert.equal((r.error as { code: number } | undefined)?.code, 14, JSON.stringify(r));
});
