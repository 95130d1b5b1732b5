// The file registry hot-reloads; a broken file keeps the last good snapshot and is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar } from '../helpers/sidecar.js';
import { startUpstream } from '../helpers/upstream.js';
import { viaSidecar, metricValue, getJson } from '../helpers/http.js';
import { until } from '../helpers/until.js';

test('edits to registry.file are picked up live; broken edits keep the last good snapshot', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-file-registry-'));
  const file = join(dir, 'services.yaml');
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  await writeFile(file, `services:\n  alpha:\n    endpoints: [${a.address}]\n`);
  const mesh = await startSidecar({ registry: { file }, services: { inline: { endpoints: [b.address] } } });
  const failures = async (): Promise<number> => metricValue(await (await fetch(`${mesh.adminUrl}/metrics`)).text(), 'dreammesh_config_reload_failures_total', { source: 'registry-file' });
  try {
    assert.equal((await viaSidecar(mesh.outbound, 'alpha')).status, 200);
    assert.equal((await viaSidecar(mesh.outbound, 'inline')).status, 200, 'inline config services stay alongside the file');
    assert.equal((await viaSidecar(mesh.outbound, 'beta')).status, 404);

    // An editor-style replace (write elsewhere, rename over) adding a service.
    await writeFile(join(dir, 'tmp'), `services:\n  alpha:\n    endpoints: [${a.address}]\n  beta:\n    endpoints: [${b.address}]\n`);
    await rename(join(dir, 'tmp'), file);
    await until('beta to appear', async () => (await viaSidecar(mesh.outbound, 'beta')).status === 200);

    await writeFile(file, 'services: {beta: [\n');
    await until('the bad YAML to be counted', async () => (await failures()) === 1);
    assert.equal((await viaSidecar(mesh.outbound, 'beta')).status, 200, 'last good snapshot still routes');

    await writeFile(file, `services:\n  beta:\n    endpionts: [${b.address}]\n`);
    await until('the unknown key to be counted', async () => (await failures()) === 2);
    assert.equal((await viaSidecar(mesh.outbound, 'alpha')).status, 200);
    const ready = await getJson(`${mesh.adminUrl}/ready`);
    assert.equal(ready.status, 200);
    assert.match(String((ready.body.registry as { message: string }).message), /endpionts: unknown key/);

    await writeFile(file, `services:\n  beta:\n    endpoints: [${b.address}]\n`);
    await until('alpha to be removed', async () => (await viaSidecar(mesh.outbound, 'alpha')).status === 404);
  } finally {
    await mesh.stop();
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a missing registry file is a clear start error', async () => {
  await assert.rejects(startSidecar({ registry: { file: '/nonexistent/services.yaml' } }), /registry\.file: cannot read \/nonexistent\/services\.yaml: ENOENT/);
});
