// The client helper and the "few lines" of other languages, against a real sidecar.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { meshDispatcher } from '../../src/client/index.js';
import { fetch } from 'undici';

const exec = promisify(execFile);
let up: TestUpstream;
let mesh: RunningSidecar;

before(async () => {
  up = await startUpstream('users');
  mesh = await startSidecar({ services: { users: { endpoints: [up.address] } } });
});
after(async () => {
  await mesh.stop();
  await up.close();
});

test('meshFetch-style dispatcher sends http://users/x to the sidecar with Host: users', async () => {
  const r = await fetch('http://users/x?q=1', { dispatcher: meshDispatcher(mesh.outbound), method: 'POST', body: 'hi' });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { name: string; url: string; bodyBytes: number; headers: Record<string, string> };
  assert.equal(body.name, 'users');
  assert.equal(body.url, '/x?q=1');
  assert.equal(body.bodyBytes, 2);
  assert.equal(body.headers.host, 'users');
});

test('meshFetch reads DREAMMESH_OUTBOUND', async () => {
  const { stdout } = await exec(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { meshFetch } from ${JSON.stringify(new URL('../../src/client/index.js', import.meta.url).href)}; const r = await meshFetch('http://users/env'); process.stdout.write(String(r.status) + ' ' + (await r.json()).url);`,
    ],
    {
      env: { ...process.env, DREAMMESH_OUTBOUND: mesh.outbound },
    },
  );
  assert.equal(stdout, '200 /env');
});

test('Python in a few lines (docs/clients.md)', async () => {
  const py = `import os, http.client\nhost, port = os.environ["DREAMMESH_OUTBOUND"].rsplit(":", 1)\nc = http.client.HTTPConnection(host, int(port))\nc.request("GET", "/py", headers={"Host": "users"})\nr = c.getresponse()\nprint(r.status, r.read().decode())`;
  const { stdout } = await exec('python3', ['-c', py], { env: { ...process.env, DREAMMESH_OUTBOUND: mesh.outbound } });
  assert.match(stdout, /^200 .*"url":"\/py"/);
});

test('Java HttpClient in a few lines (docs/clients.md)', async (t) => {
  const java = await exec('java', ['-version']).then(
    () => true,
    () => false,
  );
  if (!java) return t.skip('java is not installed (scripts/setup-system.sh installs openjdk-17-jre-headless)');
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'dm-java-'));
  try {
    const src = join(dir, 'Mesh.java');
    await writeFile(
      src,
      `import java.net.URI; import java.net.http.*;
public class Mesh { public static void main(String[] a) throws Exception {
  var mesh = System.getenv("DREAMMESH_OUTBOUND");
  var req = HttpRequest.newBuilder(URI.create("http://" + mesh + "/java")).header("Host", "users").build();
  var res = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
  System.out.println(res.statusCode() + " " + res.body());
} }`,
    );
    const { stdout } = await exec('java', ['-Djdk.httpclient.allowRestrictedHeaders=host', src], { env: { ...process.env, DREAMMESH_OUTBOUND: mesh.outbound }, timeout: 60_000 });
    assert.match(stdout, /^200 .*"url":"\/java"/);
    assert.match(stdout, /"host":"users"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
