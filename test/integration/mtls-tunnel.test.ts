// CONNECT tunnels and opaque transparent connections to a service whose endpoint has mTLS on
// are wrapped in mTLS (ALPN dreammesh-tcp) and unwrapped by the receiving sidecar to its app's port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { request } from 'undici';
import { startMtlsMesh, mtlsBlock, tunnelExchange } from '../helpers/mtls-mesh.js';
import { startSidecar } from '../helpers/sidecar.js';
import { handleTransparent } from '../../src/steering/transparent.js';
import { metricValue } from '../helpers/http.js';
import { until } from '../helpers/until.js';

test('CONNECT to an mTLS service: the bytes cross in mTLS and reach the app; the sidecar that unwraps counts it', async () => {
  const m = await startMtlsMesh();
  try {
    const reply = await tunnelExchange(m.a.outbound, 'b:80', 'GET /through-tunnel HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.match(reply, /b-app/);
    assert.equal(m.app.seen[0]?.url, '/through-tunnel');
    assert.equal(m.app.seen[0]?.headers['x-dreammesh-caller'], undefined, 'opaque bytes are not rewritten');
    let text = '';
    await until('B counts the finished tunnel', async () => {
      text = await (await request(`${m.b.adminUrl}/metrics`)).body.text();
      return /dreammesh_tunnels_total\{[^}]*mode="inbound"/.test(text);
    });
    assert.equal(metricValue(text, 'dreammesh_tunnels_total', { mode: 'inbound', kind: 'service', outcome: 'ok' }), 1);
  } finally {
    await m.close();
  }
});

test('authz: a caller without a rule that allows opaque tunnels is refused, the app sees nothing', async () => {
  const m = await startMtlsMesh({ authz: { allow: [{ from: ['a'], paths: ['/'] }] } });
  try {
    const reply = await tunnelExchange(m.a.outbound, 'b:80', 'GET /x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
    assert.doesNotMatch(reply, /b-app/);
    assert.equal(m.app.seen.length, 0);
    const text = await (await request(`${m.b.adminUrl}/metrics`)).body.text();
    assert.equal(metricValue(text, 'dreammesh_tunnels_total', { mode: 'inbound', kind: 'service', outcome: 'denied' }), 1);
  } finally {
    await m.close();
  }
});

test('an opaque (transparent, non-HTTP) connection to an mTLS endpoint is wrapped in mTLS and reaches the app', async () => {
  const m = await startMtlsMesh();
  // Sidecar A2 in this process, so that the steering stage can be handed a connection as the
  // capture rules would hand it (original destination = B's inbound listener, an opaque port).
  const bPort = Number(m.b.inbound.slice(m.b.inbound.lastIndexOf(':') + 1));
  const a2 = await startSidecar({
    services: { b: { endpoints: [{ address: m.b.inbound, mtls: true }] } },
    mtls: mtlsBlock(m.aCerts, 'permissive'),
    transparent: { opaquePorts: [bPort] },
  });
  const entry = createServer((s) => handleTransparent(a2.sidecar.context, s, { host: '127.0.0.1', port: bPort }));
  await new Promise<void>((r) => entry.listen(0, '127.0.0.1', r));
  try {
    const port = (entry.address() as AddressInfo).port;
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.write('GET /opaque HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n'));
      let text = '';
      s.setTimeout(5000, () => s.destroy(new Error(`timeout; got ${text}`)));
      s.on('data', (c: Buffer) => (text += c.toString('latin1')));
      s.on('error', reject);
      s.on('close', () => resolve(text));
    });
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.equal(m.app.seen[0]?.url, '/opaque');
    let text = '';
    await until('B counts the finished tunnel', async () => {
      text = await (await request(`${m.b.adminUrl}/metrics`)).body.text();
      return /dreammesh_tunnels_total\{[^}]*mode="inbound"/.test(text);
    });
    assert.equal(
      metricValue(text, 'dreammesh_tunnels_total', { mode: 'inbound', kind: 'service', outcome: 'ok' }),
      1,
      text
        .split('\n')
        .filter((l) => l.startsWith('dreammesh_tunnels_total'))
        .join('\n'),
    );
  } finally {
    entry.close();
    await a2.stop();
    await m.close();
  }
});
