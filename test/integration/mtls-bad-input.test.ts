// Whatever a client sends to an mTLS inbound listener, the sidecar stays up and serving:
// junk after a TLS record byte, a ClientHello cut short, a silent TLS client (handshake
// timeout), an ALPN we do not speak, a certificate-less client in permissive mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { startMtlsMesh } from '../helpers/mtls-mesh.js';
import { viaSidecar, metricValue } from '../helpers/http.js';

function hostPort(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
}

/** Sends bytes (optionally ending our side) and resolves when the server closes, with what it sent. */
function send(address: string, bytes: Buffer, end: boolean, ms = 5000): Promise<{ closed: boolean; got: number }> {
  return new Promise((resolve) => {
    const s = tcpConnect(hostPort(address), () => {
      if (end) s.end(bytes);
      else s.write(bytes);
    });
    let got = 0;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ closed: false, got });
    }, ms);
    s.on('data', (c: Buffer) => (got += c.length));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, got });
    });
  });
}

test('bad bytes and bad handshakes on the mTLS inbound listener: closed, counted, and the sidecar keeps serving', async () => {
  const s = await startMtlsMesh({ bMode: 'strict', bMtls: { handshakeTimeoutMs: 1000 } });
  try {
    // A TLS record byte, then junk.
    assert.equal((await send(s.b.inbound, Buffer.from('\x16\x03\x01\x00\x05junkjunkjunk', 'latin1'), false)).closed, true);
    // A ClientHello cut short, then FIN.
    assert.equal((await send(s.b.inbound, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]), true)).closed, true);
    // Random bytes in strict mode: no answer at all, closed.
    const junk = await send(s.b.inbound, Buffer.from('\x00\xff\x13garbage\r\n\r\n', 'latin1'), false);
    assert.deepEqual(junk, { closed: true, got: 0 });
    // A valid client certificate but only ALPN h2: refused (no protocol in common).
    const dir = s.aCerts;
    const files = { cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')), ca: await readFile(join(dir, 'ca.pem')) };
    const h2only = await new Promise<string>((resolve) => {
      const c = tlsConnect({ ...hostPort(s.b.inbound), ...files, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => {
        c.write('GET / HTTP/1.1\r\nHost: b\r\n\r\n');
      });
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      c.on('close', () => resolve('closed'));
      c.setTimeout(5000, () => c.destroy());
    });
    assert.notEqual(h2only, '', h2only);
    assert.equal(s.app.seen.length, 0, 'none of it reached the app');
    for (let i = 0; i < 3; i++) assert.equal((await viaSidecar(s.a.outbound, 'b', `/alive/${i}`)).status, 200);
    const text = await (await request(`${s.b.adminUrl}/metrics`)).body.text();
    assert.ok(metricValue(text, 'dreammesh_mtls_inbound_refused_total', { reason: 'plaintext' }) >= 1);
    assert.ok(
      metricValue(text, 'dreammesh_mtls_inbound_refused_total', { reason: 'handshake' }) >= 1,
      text
        .split('\n')
        .filter((l) => l.includes('refused'))
        .join('\n'),
    );
  } finally {
    await s.close();
  }
});

test('a TLS client that never finishes its handshake is cut at mtls.handshakeTimeoutMs', async () => {
  const m = await startMtlsMesh({ bMtls: { handshakeTimeoutMs: 1000 } });
  try {
    // Only the record header of a ClientHello, then silence.
    const started = Date.now();
    const r = await send(m.b.inbound, Buffer.from([0x16, 0x03, 0x01]), false, 15_000);
    assert.equal(r.closed, true);
    assert.ok(Date.now() - started < 5_000, `closed after ${Date.now() - started} ms`);
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/alive')).status, 200);
  } finally {
    await m.close();
  }
});
