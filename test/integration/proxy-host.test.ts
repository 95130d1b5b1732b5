// Forward-proxy mode keeps the Host the client wrote (docs/forward-proxy.md): curl as the
// client, a real sidecar, and an upstream that reports the Host it received.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rawExchange } from '../helpers/http.js';

const exec = promisify(execFile);
let users: TestUpstream;
let mesh: RunningSidecar;

before(async () => {
  users = await startUpstream('users');
  mesh = await startSidecar({ services: { users: { endpoints: [users.address] } } });
});
after(async () => {
  await mesh.stop();
  await users.close();
});

async function hostSeenFor(url: string): Promise<string | undefined> {
  const before = users.seen.length;
  const { stdout } = await exec('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', '-x', `http://${mesh.outbound}`, url], { timeout: 15_000 });
  assert.equal(stdout, '200');
  assert.equal(users.seen.length, before + 1);
  return users.seen.at(-1)!.headers.host;
}

test('the upstream receives the authority the client wrote as Host, unchanged', async () => {
  assert.equal(await hostSeenFor('http://users.mesh:8080/x'), 'users.mesh:8080');
  assert.equal(await hostSeenFor('http://users/x'), 'users');
  assert.equal(await hostSeenFor('http://users.default.svc.cluster.local/x'), 'users.default.svc.cluster.local');
});

test('a Host header that disagrees with the absolute-form URI is replaced by the URI authority', async () => {
  const before = users.seen.length;
  const answer = await rawExchange(mesh.outbound, 'GET http://users.mesh/x HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.equal(users.seen.length, before + 1);
  assert.equal(users.seen.at(-1)!.headers.host, 'users.mesh');
});
