// Every config in README.md, docs/*.md and examples/ is what `dreammesh validate` and the exported JSON
// Schema (`dreammesh schema`, as an editor would load it) both accept. Blocks are found by the
// conventions in test/helpers/markdown.ts, so a new example is tested as soon as it is written.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { ROOT, blocks, docPages, yamlHeredocs, type Block } from '../helpers/markdown.js';
import { CLI } from '../helpers/sidecar.js';
import { originalDstAvailable } from '../../src/steering/original-dst.js';

const exec = promisify(execFile);
let schema: ValidateFunction;
let work: string;

interface Config {
  readonly where: string;
  readonly text: string;
  readonly assumes: readonly string[];
}

before(async () => {
  const { stdout } = await exec(process.execPath, [CLI, 'schema'], { timeout: 20_000 });
  schema = new Ajv({ allErrors: true }).compile(JSON.parse(stdout) as object);
  work = await mkdtemp(join(tmpdir(), 'dm-docs-configs-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The configs of one page, and the files its `<!-- file: -->` blocks provide. */
function configsOf(page: string): { configs: Config[]; files: [string, string][] } {
  const configs: Config[] = [];
  const files: [string, string][] = [];
  for (const b of blocks(page)) {
    const where = `${b.page}:${b.line}`;
    const assumes = b.marker?.name === 'assumes' ? b.marker.arg.split(/[\s,]+/).filter(Boolean) : [];
    if (b.marker?.name === 'file') files.push([b.marker.arg, b.body]);
    else if (b.lang === 'yaml' && b.marker?.name !== 'fragment') configs.push({ where, text: b.body, assumes });
    else if (b.lang === 'sh') for (const [name, text] of yamlHeredocs(b)) configs.push({ where: `${where} (${name})`, text, assumes });
  }
  return { configs, files };
}

test('every fenced block in README.md and docs/ carries a language tag', () => {
  const untagged = docPages().flatMap((p) =>
    blocks(p)
      .filter((b: Block) => b.lang === '')
      .map((b) => `${b.page}:${b.line}`),
  );
  assert.deepEqual(untagged, [], 'tag each fence: yaml (a config), sh/js/python/java/go (code), text (anything else)');
});

test('the README and the docs hold configs to check', () => {
  assert.ok(configsOf('README.md').configs.length >= 1);
  assert.ok(configsOf('docs/config.md').configs.length >= 5);
});

test('every config under examples/ passes dreammesh validate and the JSON Schema', async () => {
  const found = readdirSync(join(ROOT, 'examples'), { recursive: true, encoding: 'utf8' }).filter((f) => /\.ya?ml$/.test(f));
  assert.ok(found.length >= 1, 'examples/ holds configs');
  for (const f of found) {
    const path = join(ROOT, 'examples', f);
    assert.ok(schema(parse(readFileSync(path, 'utf8')) ?? {}), `examples/${f}: the JSON Schema refuses it: ${JSON.stringify(schema.errors)}`);
    await exec(process.execPath, [CLI, 'validate', path], { cwd: ROOT, timeout: 20_000 }).catch((e: { stderr: string }) => assert.fail(`examples/${f}: ${e.stderr}`));
  }
});

for (const page of docPages()) {
  const { configs, files } = configsOf(page);
  if (configs.length === 0) continue;
  test(`${page}: every config passes dreammesh validate and the JSON Schema`, async () => {
    const dir = join(work, page.replace(/\W/g, '-'));
    await mkdir(dir, { recursive: true });
    for (const [name, text] of files) await writeFile(join(dir, name), text);
    for (const [i, c] of configs.entries()) {
      for (const name of c.assumes) await writeFile(join(dir, name), '');
      const doc = parse(c.text) as Record<string, unknown> | null;
      await certificatesFor(doc, dir);
      assert.ok(schema(doc ?? {}), `${c.where}: the JSON Schema refuses it: ${JSON.stringify(schema.errors)}`);
      const file = `mesh-${i}.yaml`;
      await writeFile(join(dir, file), c.text);
      const r = await exec(process.execPath, [CLI, 'validate', file], { cwd: dir, timeout: 20_000 }).then(
        (x) => ({ code: 0, out: x.stdout + x.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
      const transparent = (doc?.transparent as { enabled?: boolean } | undefined)?.enabled === true;
      if (transparent && !originalDstAvailable()) {
        // Without the addon, the one complaint must be exactly that (scripts/test.sh builds it).
        assert.equal(r.code, 1, `${c.where}: ${r.out}`);
        assert.deepEqual(
          r.out
            .trim()
            .split('\n')
            .map((l) => /MESH_ERR_\w+/.exec(l)?.[0]),
          ['MESH_ERR_NATIVE_MISSING'],
          `${c.where}: ${r.out}`,
        );
      } else {
        assert.equal(r.code, 0, `${c.where}: dreammesh validate refuses it:\n${r.out}`);
      }
    }
  });
}

/**
 * A config with mtls files gets real ones (validate checks the key pair, the chain and that the
 * SPIFFE ID names `service`): cert.pem, key.pem and ca.pem issued by `dreammesh ca` into the
 * certFile's directory, from one CA per page directory.
 */
async function certificatesFor(doc: Record<string, unknown> | null, dir: string): Promise<void> {
  const mtls = doc?.mtls as { certFile?: string } | undefined;
  if (mtls?.certFile === undefined) return;
  const ca = join(dir, '.docs-ca');
  if (!existsSync(join(ca, 'ca.pem'))) await exec(process.execPath, [CLI, 'ca', 'init', '--dir', ca], { timeout: 20_000 });
  const out = dirname(join(dir, mtls.certFile));
  const service = typeof doc?.service === 'string' ? doc.service : 'docs';
  await exec(process.execPath, [CLI, 'cert', 'issue', '--ca', ca, '--service', service, '--out', out], { timeout: 20_000 });
}
