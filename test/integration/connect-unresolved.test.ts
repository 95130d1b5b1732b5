// CONNECT to an allowed name that does not resolve is a documented 502, not a reset. The
// sidecar runs in a network namespace of its own (unshare -n) with no route anywhere, so its
// resolver fails on the spot and no query leaves the machine; the test reaches it through a
// Unix socket, which crosses network namespaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSidecar } from '../helpers/sidecar.js';

function whyNoUnshare(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for a private network namespace (unshare -n)';
  try {
    execFileSync('unshare', ['-n', '--', 'true'], { stdio: 'ignore', timeout: 10_000 });
    return null;
  } catch (e) {
    return `unshare -n is not available here: ${(e as Error).message}`;
  }
}

/** Sends one CONNECT over a Unix socket and returns the raw answer (bounded to 10 s). */
function connectVia(path: string, authority: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ path });
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, 10_000);
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('end', done);
    s.on('error', done);
    s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

test('CONNECT to a name that does not resolve answers 502 MESH_ERR_UPSTREAM_UNRESOLVED', async (t) => {
  const why = whyNoUnshare();
  if (why !== null) return t.skip(why);
  const dir = await mkdtemp(join(tmpdir(), 'dm-unresolved-'));
  const sock = (n: string): string => `unix:${join(dir, n)}`;
  const mesh = await spawnSidecar({ listeners: { outbound: sock('out.sock'), admin: sock('admin.sock') }, egress: { policy: 'allow-any' } }, { prefix: ['unshare', '-n', '--'] });
  try {
    const answer = await connectVia(join(dir, 'out.sock'), 'no-such-host.invalid:443');
    assert.match(answer, /^HTTP\/1\.1 502 /);
    assert.match(answer, /x-dreammesh-error: MESH_ERR_UPSTREAM_UNRESOLVED/);
    assert.match(answer, /no-such-host\.invalid:443: (ENOTFOUND|EAI_AGAIN)/);
  } finally {
    await mesh.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
