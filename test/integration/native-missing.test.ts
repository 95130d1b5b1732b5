// Without the native addon, transparent mode refuses to start with a clear error; every other
// mode starts as usual. DREAMMESH_NATIVE_ADDON points the lookup somewhere else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSidecar } from '../helpers/sidecar.js';
import { viaSidecar } from '../helpers/http.js';
import { startUpstream } from '../helpers/upstream.js';

const env = { DREAMMESH_NATIVE_ADDON: '/nonexistent/original_dst.node' };

test('transparent.enabled without the addon: start fails with MESH_ERR_NATIVE_MISSING naming the path', async () => {
  await assert.rejects(spawnSidecar({ transparent: { enabled: true } }, { env }), (e: Error) => {
    assert.match(e.message, /MESH_ERR_NATIVE_MISSING/);
    assert.match(e.message, /\/nonexistent\/original_dst\.node/);
    return true;
  });
});

test('without the addon, explicit mode still works', async () => {
  const up = await startUpstream('u');
  const m = await spawnSidecar({ services: { u: { endpoints: [up.address] } } }, { env });
  try {
    assert.equal((await viaSidecar(m.outbound, 'u')).status, 200);
  } finally {
    await m.stop();
    await up.close();
  }
});
