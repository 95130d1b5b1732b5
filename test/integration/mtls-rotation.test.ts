// Rotation of both sidecars' certificates under steady traffic loses no request: new
// connections get the new certificate, established ones finish on the old. A broken file on
// rotation keeps the last good identity (logged, counted) and the sidecar keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { startMtlsMesh, issue } from '../helpers/mtls-mesh.js';
import { viaSidecar, metricValue, getJson } from '../helpers/http.js';
import { until } from '../helpers/until.js';

/** One request on a new mTLS connection straight to B's inbound; resolves with B's certificate serial. */
async function direct(inbound: string, files: { cert: Buffer; key: Buffer; ca: Buffer }): Promise<{ status: string; serial: string }> {
  const [host, port] = [inbound.slice(0, inbound.lastIndexOf(':')), Number(inbound.slice(inbound.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    let serial = '';
    const s = connect({ host, port, ...files, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined }, () => {
      serial = s.getPeerX509Certificate()?.serialNumber ?? '';
      s.write('GET /direct HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
    });
    let text = '';
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve({ status: text.slice(9, 12), serial }));
  });
}

test('rotating both certificates under 2 s of sequential traffic loses no request; new connections see the new certificate', async () => {
  const m = await startMtlsMesh();
  try {
    const clientDir = join(m.dir, 'client');
    const c = await issue(m.caDir, 'a', clientDir);
    const files = { cert: await readFile(c.cert), key: await readFile(c.key), ca: await readFile(c.ca) };
    const before = { a: (await getJson(`${m.a.adminUrl}/certs`)).body.serial, b: (await getJson(`${m.b.adminUrl}/certs`)).body.serial };
    const failures: string[] = [];
    let sent = 0;
    const serialsSeen = new Set<string>();
    const deadline = Date.now() + 2000;
    let rotated = false;
    while (Date.now() < deadline && sent < 2000) {
      if (!rotated && Date.now() > deadline - 1400) {
        rotated = true;
        // In the middle of the traffic, both sidecars get new files (key first, then ca, then cert).
        void issue(m.caDir, 'a', m.aCerts);
        void issue(m.caDir, 'b', m.bCerts);
      }
      sent += 1;
      const r = await viaSidecar(m.a.outbound, 'b', `/r/${sent}`).catch((e: Error) => ({ status: 0, text: e.message }));
      if (r.status !== 200) failures.push(`A→B ${r.status} ${r.text.slice(0, 200)}`);
      if (sent % 4 === 0) {
        const d = await direct(m.b.inbound, files).catch((e: Error) => ({ status: e.message, serial: '' }));
        if (d.status !== '200') failures.push(`direct ${d.status}`);
        serialsSeen.add(d.serial);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${sent} failed`);
    assert.ok(sent > 20, `only ${sent} requests`);
    await until('both sidecars rotated', async () => {
      const a = (await getJson(`${m.a.adminUrl}/certs`)).body.serial;
      const b = (await getJson(`${m.b.adminUrl}/certs`)).body.serial;
      return a !== before.a && b !== before.b;
    });
    const after = (await getJson(`${m.b.adminUrl}/certs`)).body.serial as string;
    const d = await direct(m.b.inbound, files);
    assert.equal(d.status, '200');
    assert.equal(d.serial.toLowerCase(), after.toLowerCase(), 'a new connection gets the new certificate');
    // New connections from A to B after the rotation (a second service name uses a pool of its own).
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/after')).status, 200);
    const bMetrics = await (await request(`${m.b.adminUrl}/metrics`)).body.text();
    assert.ok(metricValue(bMetrics, 'dreammesh_mtls_identity_reloads_total', { outcome: 'rotated' }) >= 1);
  } finally {
    await m.close();
  }
});

test('a broken or half-written certificate keeps the last good identity; the failure is counted and serving goes on', async () => {
  const m = await startMtlsMesh();
  try {
    const serial = (await getJson(`${m.b.adminUrl}/certs`)).body.serial;
    const good = await readFile(join(m.bCerts, 'cert.pem'), 'utf8');
    await writeFile(join(m.bCerts, 'cert.pem'), good.slice(0, good.length / 2));
    await until('the broken file is rejected', async () => metricValue(await (await request(`${m.b.adminUrl}/metrics`)).body.text(), 'dreammesh_mtls_identity_reload_failures_total', {}) >= 1);
    assert.equal((await getJson(`${m.b.adminUrl}/certs`)).body.serial, serial);
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/x')).status, 200);
    // A certificate of another service with the old key: rejected too.
    await issue(m.caDir, 'zz', join(m.dir, 'zz'));
    await writeFile(join(m.bCerts, 'cert.pem'), await readFile(join(m.dir, 'zz', 'cert.pem')));
    await until('the mismatched pair is rejected', async () => metricValue(await (await request(`${m.b.adminUrl}/metrics`)).body.text(), 'dreammesh_mtls_identity_reload_failures_total', {}) >= 2);
    assert.equal((await getJson(`${m.b.adminUrl}/certs`)).body.serial, serial);
    assert.equal((await getJson(`${m.b.adminUrl}/ready`)).status, 200);
    assert.match(m.b.stderr(), /last good identity stays in force/);
    const r = await viaSidecar(m.a.outbound, 'b', '/y');
    assert.equal(r.status, 200);
    assert.equal(m.app.seen.length, 2);
  } finally {
    await m.close();
  }
});
