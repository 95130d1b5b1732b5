import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ERRORS } from '../../src/core/errors.js';

test('docs/errors.md documents exactly the codes in the error registry', async () => {
  const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^## (MESH_ERR_[A-Z_]+)$/gm)].map((m) => m[1]).sort();
  assert.deepEqual(documented, Object.keys(ERRORS).sort());
  for (const [code, spec] of Object.entries(ERRORS)) {
    const section = doc.slice(doc.indexOf(`## ${code}\n`)).split('\n## ')[0]!;
    assert.match(section, new RegExp(`Status ${spec.status}\\b`), `${code} documents status ${spec.status}`);
  }
});

test('docs/config.md is the rendering of the current schema', async () => {
  const { renderConfigDoc } = await import('../../src/config/config-doc.js');
  const doc = await readFile(new URL('../../../docs/config.md', import.meta.url), 'utf8');
  assert.equal(doc, renderConfigDoc(), 'run `node dist/src/cli/main.js schema --markdown > docs/config.md`');
});
