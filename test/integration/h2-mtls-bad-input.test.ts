// Bad input at the inbound HTTP/2 entries: prior-knowledge h2c (mtls off) and TLS with ALPN h2
// (mtls strict, a client with a valid certificate). Garbage after the preface, a rapid-reset
// storm, a preface and then silence. After each: the process is alive and still serves gRPC
// on the entry that was abused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as h2Connect } from 'node:http2';
import { request } from 'undici';
import { startMtlsMesh, type MtlsMesh } from '../helpers/mtls-mesh.js';
import { spawnSidecar, type SpawnedSidecar } from '../helpers/sidecar.js';
import { metricSum } from '../helpers/http1-mesh.js';
import { rawH2, frame, T, F, getBlock, PREFACE } from '../helpers/h2-frames.js';
import { startGrpcServers, echoClient, unary, type GrpcServers } from '../helpers/grpc-mesh.js';

let app: GrpcServers;
let plain: SpawnedSidecar;
let mesh: MtlsMesh;
let tlsOpts: { cert: Buffer; key: Buffer; ca: Buffer };

before(async () => {
  app = await startGrpcServers(1);
  plain = await spawnSidecar({ service: 'b', app: app.addresses[0]!, timeouts: { downstreamIdleMs: 2000, requestHeaderMs: 1000 } });
  mesh = await startMtlsMesh({ bApp: app.addresses[0]!, bExtra: { timeouts: { downstreamIdleMs: 2000 } } });
  const d = mesh.aCerts;
  tlsOpts = { cert: await readFile(join(d, 'cert.pem')), key: await readFile(join(d, 'key.pem')), ca: await readFile(join(d, 'ca.pem')) };
});

after(async () => {
  await plain?.stop();
  await mesh?.close();
  await app?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Alive, and a gRPC call still crosses the entry (plaintext: straight to B; TLS: through A). */
async function serves(s: SpawnedSidecar, why: string): Promise<void> {
  assert.ok(s.child.exitCode === null && s.child.signalCode === null, `${why}: the sidecar died:\n${s.stderr().slice(-2000)}`);
  const c = s === plain ? echoClient(plain.inbound, 'b') : echoClient(mesh.a.outbound, 'b');
  try {
    assert.deepEqual(await unary(c, { text: why }), { text: why, server: 0 }, `${why}: still serves`);
  } finally {
    c.close();
  }
}

/** A TLS connection to B's strict inbound with A's certificate, ALPN h2. */
function tlsH2(address: string): Promise<TLSSocket> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), ...tlsOpts, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    s.once('secureConnect', () => {
      assert.equal(s.alpnProtocol, 'h2');
      resolve(s);
    });
    s.on('error', reject);
  });
}

function closedWithin(s: { once(e: 'close', f: () => void): unknown; destroyed: boolean; resume(): unknown }, ms: number): Promise<boolean> {
  // Read whatever arrives: a paused socket would never see the peer's close.
  s.resume();
  return new Promise((r) => {
    if (s.destroyed) return r(true);
    const t = setTimeout(() => r(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      r(true);
    });
  });
}

async function goaways(s: SpawnedSidecar, reason: string): Promise<number> {
  return metricSum(await (await request(`${s.adminUrl}/metrics`)).body.text(), 'dreammesh_h2_goaway_total', { reason });
}

test('plaintext h2c: garbage after the preface ends that connection only', async () => {
  const c = await rawH2(plain.inbound);
  c.write(Buffer.from('\x00\x00\x05\xff\xff\x00\x00\x00\x01garbage that is not a frame at all'.repeat(20), 'latin1'));
  assert.ok(await c.waitClosed(5000), 'the connection was closed');
  await serves(plain, 'garbage after preface (h2c)');
});

test('plaintext h2c: a rapid-reset storm ends with GOAWAY ENHANCE_YOUR_CALM, counted', async () => {
  const before = await goaways(plain, 'rapid-reset');
  const c = await rawH2(plain.inbound);
  const bufs: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    const id = 2 * i + 1;
    bufs.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, getBlock('b', '/mesh.Echo/Unary')));
    bufs.push(frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  }
  c.write(Buffer.concat(bufs));
  assert.ok(await c.waitClosed(5000), 'the connection was ended');
  assert.equal(c.goaway(), 11, 'GOAWAY with ENHANCE_YOUR_CALM');
  assert.ok((await goaways(plain, 'rapid-reset')) > before);
  await serves(plain, 'rapid reset (h2c)');
});

test('plaintext h2c: half a preface, then silence, is closed at the idle timeout', async () => {
  const c = await rawH2(plain.inbound).catch(() => null);
  c?.socket.destroy();
  const i = plain.inbound.lastIndexOf(':');
  const { connect } = await import('node:net');
  const s = connect({ host: plain.inbound.slice(0, i), port: Number(plain.inbound.slice(i + 1)) });
  s.on('error', () => {});
  s.write(PREFACE.subarray(0, 10));
  assert.ok(await closedWithin(s, 8000), 'closed by the sidecar');
  await serves(plain, 'half a preface');
});

test('TLS h2 (strict): garbage after the preface ends that connection only', async () => {
  const s = await tlsH2(mesh.b.inbound);
  s.on('error', () => {});
  s.write(Buffer.concat([PREFACE, Buffer.from('\x00\x00\x08\x07\x00\x00\x00\x00\x03not a frame'.repeat(50), 'latin1')]));
  assert.ok(await closedWithin(s, 5000), 'the connection was closed');
  await serves(mesh.b, 'garbage after preface (TLS)');
});

test('TLS h2 (strict): a rapid-reset storm ends with GOAWAY, counted; a plain node:http2 client over TLS still works', async () => {
  const before = await goaways(mesh.b, 'rapid-reset');
  const s = await tlsH2(mesh.b.inbound);
  s.on('error', () => {});
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  const bufs: Buffer[] = [PREFACE, frame(T.SETTINGS, 0, 0)];
  for (let i = 0; i < 3000; i++) {
    const id = 2 * i + 1;
    bufs.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, getBlock('b', '/mesh.Echo/Unary')));
    bufs.push(frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  }
  // Slowly enough that the server's SETTINGS are in force (as a real attacker would).
  s.write(Buffer.concat(bufs.slice(0, 2)));
  await sleep(100);
  s.write(frame(T.SETTINGS, F.ACK, 0));
  s.write(Buffer.concat(bufs.slice(2)));
  assert.ok(await closedWithin(s, 5000), 'the connection was ended');
  assert.ok((await goaways(mesh.b, 'rapid-reset')) > before, 'counted as rapid-reset');
  await serves(mesh.b, 'rapid reset (TLS)');
  // node:http2 over TLS with ALPN h2 straight to B: served, and B's app gets the call.
  const status = await new Promise<string>((resolve, reject) => {
    const c = h2Connect(`https://${mesh.b.inbound}`, { ...tlsOpts, checkServerIdentity: () => undefined });
    c.on('error', reject);
    const r = c.request({ ':path': '/mesh.Echo/Nope', ':method': 'POST', ':authority': 'b', 'content-type': 'application/grpc', te: 'trailers' });
    r.on('error', reject);
    r.on('response', (h) => {
      resolve(`${String(h[':status'])} ${String(h['grpc-status'] ?? '')}`);
      c.close();
    });
    r.end();
  });
  // The app (grpc-js) answers an unknown method itself: 12 UNIMPLEMENTED.
  assert.equal(status, '200 12');
});
