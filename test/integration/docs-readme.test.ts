// The README and the command lines of the docs, taken at their word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
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
  assert.equal(
    text
      .split('\n')
      .slice(0, first.line - 1)
      .filter((l) => l.trim() !== '')
      .join('\n'),
    '# DreamMesh',
    'nothing but the title before the commands',
  );
  const commands = first.body
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
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
  const args = line
    .replace(/\s+#.*$/, '')
    .trim()
    .split(/\s+/);
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

test("the README's quickstart curl lines work against a running quickstart", async () => {
  const block = readme.find((b) => b.lang === 'sh' && b.body.includes('# explicit mode'));
  assert.ok(block, 'README.md shows the quickstart curl lines');
  // Below the ephemeral range, so no client socket of another test holds these ports.
  const base = 20000 + Math.floor(Math.random() * 12000);
  const child = spawn(process.execPath, [CLI, 'quickstart', '--base-port', String(base)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no quickstart banner in 15 s: ${err}`)), 15_000);
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        if (err.includes('Ctrl-C stops everything')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`quickstart exited ${code}: ${err}`)));
    });
    const lines = block.body
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter(Boolean);
    assert.ok(lines.length >= 3);
    for (const line of lines) {
      // The README's ports are the default base (15000); this quickstart runs at `base`.
      const cmd = line.replace(/127\.0\.0\.1:15(\d{3})/g, (_m, off: string) => `127.0.0.1:${base + Number(off)}`);
      const { stdout } = await exec('bash', ['-c', `${cmd.replace(/^curl /, 'curl -sS --fail --max-time 10 ')}`], { timeout: 15_000 });
      assert.match(stdout, /users/, `${line} → ${stdout}`);
      if (line.includes('x-beta: yes')) assert.match(stdout, /"version":"v2"/, 'the beta route answers from v2');
    }
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
  }
});

test("the README's validate, schema, env and explain lines work with the README's config", async () => {
  const runnable = readme
    .filter((b) => b.lang === 'sh')
    .flatMap((b) => b.body.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => /^npx dreammesh (validate|schema|env|explain)\b/.test(l));
  assert.ok(runnable.length >= 4, runnable.join('\n'));
  const dir = await mkdtemp(join(tmpdir(), 'dm-readme-lines-'));
  try {
    for (const b of readme) {
      if (b.marker?.name === 'file') await writeFile(join(dir, b.marker.arg), b.body);
      else if (b.lang === 'yaml' && b.body.includes('listeners:')) await writeFile(join(dir, 'mesh.yaml'), b.body);
    }
    for (const line of runnable) {
      const cmd = line.replace(/^npx dreammesh /, `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} `);
      const r = await exec('bash', ['-c', cmd], { cwd: dir, timeout: 20_000 }).catch((e: { stderr: string; code: number }) => assert.fail(`${line}: exit ${e.code}\n${e.stderr}`));
      assert.ok(r.stdout.length > 0 || line.includes('>'), `${line} prints something`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
