// authz.allow on B's inbound: only the listed callers, methods and path prefixes reach the
// app; everything else is 403 MESH_ERR_FORBIDDEN, counted, and never forwarded. SIGHUP reloads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { request } from 'undici';
import { startMtlsMesh, issue, curl } from '../helpers/mtls-mesh.js';
import { viaSidecar, metricValue, getJson } from '../helpers/http.js';
import { until } from '../helpers/until.js';

test('authz denies another path, method and caller; the app never sees them; SIGHUP applies new rules', async () => {
  const m = await startMtlsMesh({ authz: { allow: [{ from: ['a'], methods: ['GET'], paths: ['/public'] }] } });
  try {
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/public/x?q=1')).status, 200);
    const denied = [
      await viaSidecar(m.a.outbound, 'b', '/private'),
      await viaSidecar(m.a.outbound, 'b', '/public', { method: 'POST', body: 'x' }),
      await viaSidecar(m.a.outbound, 'b', '/public/../private'),
      await viaSidecar(m.a.outbound, 'b', '/public/%2e%2e/private'),
    ];
    for (const r of denied) {
      assert.equal(r.status, 403, r.text);
      // B refused; A passes B's answer on, its error header renamed (x-dreammesh-error is A's own).
      assert.equal(r.headers['x-dreammesh-upstream-error'], 'MESH_ERR_FORBIDDEN');
    }
    // Another caller (service "c") with a valid certificate: refused as well.
    const c = await issue(m.caDir, 'c', join(m.dir, 'c'));
    const other = await curl('-i', '--cert', c.cert, '--key', c.key, '-k', `https://${m.b.inbound}/public/x`);
    assert.match(other.out, /403/);
    assert.match(other.out, /MESH_ERR_FORBIDDEN/);
    assert.deepEqual(
      m.app.seen.map((s) => s.url),
      ['/public/x?q=1'],
    );
    const text = await (await request(`${m.b.adminUrl}/metrics`)).body.text();
    assert.equal(metricValue(text, 'dreammesh_authz_denied_total', { caller: 'a' }), 4);
    assert.equal(metricValue(text, 'dreammesh_authz_denied_total', { caller: 'c' }), 1);
    assert.equal(metricValue(text, 'dreammesh_inbound_requests_total', { caller: 'a', code: '403' }), 4);
    // Reload with a wider rule: /private is allowed for a from now on.
    const cfg = parse(await readFile(m.b.configFile, 'utf8')) as Record<string, unknown>;
    cfg.authz = { allow: [{ from: ['a'], paths: ['/public', '/private'] }] };
    await writeFile(m.b.configFile, stringify(cfg));
    m.b.signal('SIGHUP');
    await until('the reload applied', async () => (await getJson(`${m.b.adminUrl}/config`)).body.version === 2);
    assert.equal((await viaSidecar(m.a.outbound, 'b', '/private')).status, 200);
    assert.equal(m.app.seen.length, 2);
  } finally {
    await m.close();
  }
});
