import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('an unknown command is a clear usage error with exit code 2', async () => {
  const err = await run(process.execPath, [bin, 'frobnicate']).then(
    () => assert.fail('expected failure'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 2);
  assert.match(err.stderr, /unknown command "frobnicate"/);
  assert.match(err.stderr, /usage: dreammesh/);
});

test('quickstart documents --base-port and refuses an unknown option with its usage', async () => {
  const help = await run(process.execPath, [bin, 'quickstart', '--help']);
  assert.match(help.stdout, /--base-port N/);
  const err = await run(process.execPath, [bin, 'quickstart', '--base-prot', '25000']).then(
    () => assert.fail('expected failure'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 2);
  assert.match(err.stderr, /Unknown option '--base-prot'[\s\S]*usage: dreammesh quickstart \[--base-port N\]/);
});

test('output piped into a reader that is already gone (| true, like an early | head) ends quietly', async () => {
  // `true` exits before node has started, so the first write meets a closed pipe.
  const { stderr } = await run('bash', ['-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} schema --markdown | true; echo "exit \${PIPESTATUS[0]}" >&2`]);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
  assert.match(stderr, /exit 0/);
});
