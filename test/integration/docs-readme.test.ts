// The README and the command lines of the docs, taken at their word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, blocks, docPages } from '../helpers/markdown.js';
import { CLI } from '../helpers/sidecar.js';

const exec = promisify(execFile);
const readme = blocks('README.md');

test('the README opens with exactly the two commands: quickstart and the test suite', () => {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const first = readme[0]!;
  assert.equal(text.split('\n').slice(0, first.line - 1).filter((l) => l.trim() !== '').join('\n'), '# DreamMesh', 'nothing but the title before the commands');
  const commands = first.body.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
  assert.deepEqual(commands, ['npm ci && npx dreammesh quickstart', 'bash scripts/test.sh']);
});

test('no command line in the docs runs a bare `dreammesh`, which is not on PATH', () => {
  const bare = docPages().flatMap((p) =>
    blocks(p)
      .filter((b) => b.lang === 'sh')
      .flatMap((b) => b.body.split('\n').flatMap((l, i) => (/(^|[;&|(]\s*|--clear-groups\s+|sudo\s+|exec\s+)dreammesh\b/.test(l.trim()) ? [`${p}:${b.line + 1 + i}: ${l.trim()}`] : []))),
  );
  assert.deepEqual(bare, [], 'use `npx dreammesh` (or node_modules/.bin/dreammesh)');
});

test("the README's `redirect install --dry-run` line works with the README's own config", async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root for a private network namespace (unshare -n) to read rules from');
  const line = readme.flatMap((b) => (b.lang === 'sh' ? b.body.split('\n') : [])).find((l) => /redirect install .*--dry-run/.test(l));
  assert.ok(line, 'README.md shows a redirect install --dry-run line');
  const args = line.replace(/\s+#.*$/, '').trim().split(/\s+/);
  assert.deepEqual(args.slice(0, 3), ['sudo', 'npx', 'dreammesh']);
  const dir = await mkdtemp(join(tmpdir(), 'dm-readme-redirect-'));
  try {
    for (const b of readme) {
      if (b.marker?.name === 'file') await writeFile(join(dir, b.marker.arg), b.body);
      else if (b.lang === 'yaml' && b.body.includes('listeners:')) await writeFile(join(dir, 'mesh.yaml'), b.body);
    }
    // In a network namespace of its own, so that reading the current rules reads an empty set.
    execFileSync('unshare', ['-n', '--', 'true'], { stdio: 'ignore', timeout: 10_000 });
    const { stdout } = await exec('unshare', ['-n', '--', process.execPath, CLI, ...args.slice(3)], { cwd: dir, timeout: 30_000 });
    assert.match(stdout, /^# backend: /);
    assert.match(stdout, /(--uid-owner 1337|skuid 1337)/, 'the rules exempt the sidecar uid the line names');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
