// gRPC on captured connections: the application (uid 1001, client namespace) dials one grpc-js
// server by address with no proxy and no sidecar address; nftables REDIRECT sends the
// connection to the sidecar, detection sees the HTTP/2 preface, and each call is routed by
// :authority (an endpoint address of the service) and balanced over the three servers in the
// server namespace. Skipped, with the reason printed, when not root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, whyNoNetns, type NetnsPair } from '../helpers/netns.js';
import { spawnSidecar, CLI, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricSum } from '../helpers/http1-mesh.js';

const skip = whyNoNetns();
if (skip !== null) process.stdout.write(`# e2e h2-grpc-transparent: skipped: ${skip}\n`);

const APP = ['setpriv', '--reuid=1001', '--regid=1001', '--clear-groups'];
const SERVERS = fileURLToPath(new URL('../helpers/grpc-servers-main.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('../helpers/grpc-client-main.js', import.meta.url));
const BASE = 50051;

let net: NetnsPair;
let servers: ChildProcess | undefined;
let mesh: SpawnedSidecar | undefined;

function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), 15_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}: ${out}`)));
  });
}

function appClient(target: string, n: number, authority = ''): { seen?: number[]; error?: { code: number } } {
  const r = net.try(net.client, [...APP, process.execPath, CLIENT, target, String(n), authority]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { seen?: number[]; error?: { code: number } };
}

function metrics(): string {
  return net.sh(net.client, ['curl', '-s', '-m', '5', 'http://127.0.0.1:15000/metrics']);
}

describe('gRPC on captured (transparent) connections', { skip: skip ?? false }, () => {
  before(async () => {
    net = createNetnsPair('g2');
    servers = spawn('ip', ['netns', 'exec', net.server, process.execPath, SERVERS, net.serverIp, String(BASE)], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitReady(servers, 'grpc servers');
    mesh = await spawnSidecar(
      {
        listeners: { outbound: '127.0.0.1:15001', admin: '127.0.0.1:15000' },
        transparent: { enabled: true, detectTimeoutMs: 1000, redirect: { proxyUid: 0 } },
        services: { echo: { endpoints: [0, 1, 2].map((i) => ({ address: `${net.serverIp}:${BASE + i}`, protocol: 'http2' })) } },
      },
      { prefix: ['ip', 'netns', 'exec', net.client] },
    );
    const r = net.try(net.client, [process.execPath, CLI, 'redirect', 'install', '--config', mesh.configFile, '--backend', 'nftables']);
    assert.equal(r.status, 0, r.stderr);
  });

  after(async () => {
    if (net) net.try(net.client, [process.execPath, CLI, 'redirect', 'uninstall']);
    await mesh?.stop();
    servers?.kill('SIGKILL');
    net?.destroy();
  });

  test('60 unary calls over one channel to one server address are balanced over all three', () => {
    const r = appClient(`${net.serverIp}:${BASE}`, 60);
    assert.ok(r.seen, JSON.stringify(r));
    for (const [i, n] of r.seen.entries()) assert.ok(n >= 5, `server ${i} got ${n} of 60: ${r.seen.join(',')}`);
    const m = metrics();
    assert.ok(metricSum(m, 'dreammesh_detected_protocol_total', { protocol: 'http2' }) >= 1);
    assert.ok(metricSum(m, 'dreammesh_grpc_calls_total', { mode: 'transparent', service: 'echo', grpc_status: '0' }) >= 60);
  });

  test(':authority naming the service (default_authority) is routed the same way', () => {
    const r = appClient(`${net.serverIp}:${BASE + 1}`, 30, 'echo');
    assert.ok(r.seen, JSON.stringify(r));
    assert.ok(r.seen.filter((n) => n > 0).length >= 2, `calls spread: ${r.seen.join(',')}`);
  });

  test('bad input on a captured HTTP/2 connection ends that connection only', () => {
    const script = `
const s = require('net').connect(${BASE}, '${net.serverIp}');
s.on('error', () => {});
s.resume();
s.on('connect', () => s.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'), Buffer.alloc(64, 0xff)])));
const t = setTimeout(() => { console.log('open'); process.exit(0); }, 5000);
s.on('close', () => { clearTimeout(t); console.log('closed'); });`;
    for (let i = 0; i < 5; i++) {
      const r = net.try(net.client, [...APP, process.execPath, '-e', script]);
      assert.equal(r.stdout.trim(), 'closed', r.stderr);
    }
    const m = metrics();
    assert.ok(metricSum(m, 'dreammesh_h2_goaway_total') >= 5, 'each counted');
  });

  test('the sidecar is alive and still serves after the calls', () => {
    const c = mesh!.child;
    assert.ok(c.exitCode === null && c.signalCode === null, mesh!.stderr().slice(-2000));
    const r = appClient(`${net.serverIp}:${BASE + 2}`, 3);
    assert.ok(r.seen, JSON.stringify(r));
  });
});
