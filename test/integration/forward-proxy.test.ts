// Forward-proxy mode end to end with real clients: curl (-x, env, NO_PROXY, https through
// CONNECT), Python urllib, Java HttpClient with the properties from `dreammesh env`, and
// undici's EnvHttpProxyAgent. External destinations live on 127.0.0.2 so that the loopback
// entries NO_PROXY always carries (localhost, 127.0.0.1, ::1) do not cover them.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, EnvHttpProxyAgent } from 'undici';
import { stringify } from 'yaml';
import { startSidecar, CLI, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, deadPort, type TestUpstream } from '../helpers/upstream.js';
import { metricValue, rawExchange } from '../helpers/http.js';
import { connectVia, readAll, makeTestCert, startTlsServer, type TestCert, type Listening } from '../helpers/proxy.js';
import type { Server as TlsServer } from 'node:https';

const exec = promisify(execFile);
let v1: TestUpstream;
let v2: TestUpstream;
let ext: Server;
let extPort: number;
let cert: TestCert;
let tls: Listening<TlsServer>;
/** A TLS server outside the mesh (tls is the endpoint of the mesh service "secure"). */
let tlsExt: Listening<TlsServer>;
let mesh: RunningSidecar;
let dir: string;
let configFile: string;
/** The environment `dreammesh env --mode proxy --config <file>` prints, as JSON. */
let proxyEnv: Record<string, string>;

async function metrics(): Promise<string> {
  const r = await request(`${mesh.adminUrl}/metrics`);
  return r.body.text();
}

/** Tunnels that ended without a mesh-side failure (a TLS client may reset after its FIN). */
async function cleanTunnels(kind: string): Promise<number> {
  const m = await metrics();
  return metricValue(m, 'dreammesh_tunnels_total', { mode: 'proxy', kind, outcome: 'ok' }) + metricValue(m, 'dreammesh_tunnels_total', { mode: 'proxy', kind, outcome: 'downstream-aborted' });
}

async function waitTunnels(kind: string, atLeast: number): Promise<number> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const v = await cleanTunnels(kind);
    if (v >= atLeast || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Environment for a child: ours minus any proxy settings, plus `vars`. */
function envWith(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy', 'JAVA_TOOL_OPTIONS']) delete env[k];
  return { ...env, ...vars };
}

before(async () => {
  v1 = await startUpstream('users-v1');
  v2 = await startUpstream('users-v2');
  ext = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name: 'external', url: req.url, headers: req.headers }));
  });
  await new Promise<void>((r) => ext.listen(0, '127.0.0.2', r));
  extPort = (ext.address() as AddressInfo).port;
  cert = await makeTestCert();
  tls = await startTlsServer(cert, '127.0.0.2');
  tlsExt = await startTlsServer(cert, '127.0.0.2');
  mesh = await startSidecar({
    lb: 'round-robin',
    services: {
      users: { endpoints: [v1.address, v2.address] },
      secure: { endpoints: [tls.address] },
      flaky: { endpoints: [`127.0.0.1:${await deadPort()}`, v1.address] },
    },
    egress: { policy: 'registry-only', allow: [`127.0.0.2:${extPort}`, `127.0.0.2:${tlsExt.port}`], bypass: ['.corp.test'] },
  });
  dir = await mkdtemp(join(tmpdir(), 'dm-proxy-'));
  configFile = join(dir, 'mesh.yaml');
  await writeFile(configFile, stringify({ listeners: { outbound: mesh.outbound }, egress: { bypass: ['.corp.test'] } }));
  const { stdout } = await exec(process.execPath, [CLI, 'env', '--mode', 'proxy', '--config', configFile, '--format', 'json']);
  proxyEnv = JSON.parse(stdout) as Record<string, string>;
});
after(async () => {
  await mesh.stop();
  await v1.close();
  await v2.close();
  await tls.close();
  await tlsExt.close();
  await new Promise<void>((r) => {
    ext.closeAllConnections();
    ext.close(() => r());
  });
  await cert.cleanup();
  await rm(dir, { recursive: true, force: true });
});

test('dreammesh env --mode proxy names this sidecar', () => {
  assert.equal(proxyEnv.HTTP_PROXY, `http://${mesh.outbound}`);
  assert.equal(proxyEnv.https_proxy, `http://${mesh.outbound}`);
  assert.equal(proxyEnv.NO_PROXY, 'localhost,127.0.0.1,::1,.corp.test');
  assert.match(proxyEnv.JAVA_TOOL_OPTIONS!, /-Dhttp\.nonProxyHosts=localhost\|127\.0\.0\.1\|\[::1\]\|\*\.corp\.test$/);
});

test('curl -x: absolute-form requests route like explicit mode, counted with mode="proxy"', async () => {
  const before = metricValue(await metrics(), 'dreammesh_requests_total', { mode: 'proxy', service: 'users', code: '200' });
  for (const url of ['http://users/hello?x=1', 'http://users:8080/hello?x=1', 'http://users.mesh/hello?x=1', 'http://users.default.svc.cluster.local/hello?x=1', 'http://USERS/hello?x=1']) {
    const { stdout } = await exec('curl', ['-s', '--noproxy', '', '-x', `http://${mesh.outbound}`, url]);
    const body = JSON.parse(stdout) as { name: string; url: string };
    assert.match(body.name, /^users-v[12]$/, url);
    assert.equal(body.url, '/hello?x=1', url);
  }
  const m = await metrics();
  assert.equal(metricValue(m, 'dreammesh_requests_total', { mode: 'proxy', service: 'users', code: '200' }), before + 5);
  assert.ok(metricValue(m, 'dreammesh_request_duration_seconds_count', { mode: 'proxy', service: 'users' }) >= 5);
});

test('Proxy-Connection and Proxy-Authorization are not forwarded', async () => {
  const { stdout } = await exec('curl', ['-s', '--noproxy', '', '-x', `http://${mesh.outbound}`, '-U', 'alice:secret', '-H', 'Proxy-Connection: keep-alive', '-H', 'x-keep: 1', 'http://users/h']);
  const h = (JSON.parse(stdout) as { headers: Record<string, string> }).headers;
  assert.equal(h['proxy-authorization'], undefined);
  assert.equal(h['proxy-connection'], undefined);
  assert.equal(h['x-keep'], '1');
  assert.equal(h.host, 'users');
});

test('curl with the env from dreammesh env: a mesh service goes through the sidecar, a NO_PROXY destination never reaches it', async () => {
  const env = envWith(proxyEnv);
  const m0 = await metrics();
  const total0 = metricValue(m0, 'dreammesh_requests_total', { mode: 'proxy', service: 'users', code: '200' });
  const { stdout } = await exec('curl', ['-s', 'http://users/env'], { env });
  assert.match((JSON.parse(stdout) as { name: string }).name, /^users-v[12]$/);
  const m1 = await metrics();
  assert.equal(metricValue(m1, 'dreammesh_requests_total', { mode: 'proxy', service: 'users', code: '200' }), total0 + 1);
  // 127.0.0.1 is in NO_PROXY: curl goes straight to the upstream, the sidecar sees nothing.
  const seen = v1.seen.length;
  const direct = await exec('curl', ['-s', `http://127.0.0.1:${v1.port}/direct`], { env });
  assert.equal((JSON.parse(direct.stdout) as { name: string }).name, 'users-v1');
  assert.equal(v1.seen.length, seen + 1);
  assert.equal(v1.seen.at(-1)!.headers.via, undefined, 'no sidecar on the way');
  const m2 = await metrics();
  const sum = (text: string): number =>
    text
      .split('\n')
      .filter((l) => l.startsWith('dreammesh_requests_total{'))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  assert.equal(sum(m2), sum(m1), 'dreammesh_requests_total did not move');
  assert.equal(metricValue(m2, 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'egress', outcome: 'ok' }), metricValue(m1, 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'egress', outcome: 'ok' }));
});

test('curl https:// through CONNECT: TLS end to end to an allowed external host and to a mesh service', async () => {
  const env = envWith(proxyEnv);
  const okBefore = await cleanTunnels('egress');
  const { stdout } = await exec('curl', ['-sS', '--cacert', cert.certFile, `https://127.0.0.2:${tlsExt.port}/over-tls`], { env });
  assert.equal(stdout, 'secure /over-tls\n');
  assert.equal(await waitTunnels('egress', okBefore + 1), okBefore + 1);
  // The mesh name "secure" resolves to the TLS endpoint; the certificate names it, so TLS checks pass.
  const svcBefore = await cleanTunnels('service');
  const viaMesh = await exec('curl', ['-sS', '--cacert', cert.certFile, 'https://secure/mesh-tls'], { env });
  assert.equal(viaMesh.stdout, 'secure /mesh-tls\n');
  assert.equal(await waitTunnels('service', svcBefore + 1), svcBefore + 1);
  const m = await metrics();
  assert.ok(metricValue(m, 'dreammesh_tunnel_bytes_total', { mode: 'proxy', direction: 'up' }) > 0);
  assert.ok(metricValue(m, 'dreammesh_tunnel_bytes_total', { mode: 'proxy', direction: 'down' }) > 0);
});

test('absolute-form to an allowed external host is forwarded and labelled service="egress"', async () => {
  const before = metricValue(await metrics(), 'dreammesh_requests_total', { mode: 'proxy', service: 'egress', code: '200' });
  const { stdout } = await exec('curl', ['-s', '--noproxy', '', '-x', `http://${mesh.outbound}`, `http://127.0.0.2:${extPort}/out`]);
  const body = JSON.parse(stdout) as { name: string; url: string; headers: Record<string, string> };
  assert.equal(body.name, 'external');
  assert.equal(body.url, '/out');
  assert.match(body.headers.via!, /dreammesh-/);
  assert.equal(metricValue(await metrics(), 'dreammesh_requests_total', { mode: 'proxy', service: 'egress', code: '200' }), before + 1);
});

test('egress denied: absolute-form, CONNECT, a forbidden port, and explicit mode all answer 403', async () => {
  const proxied = await exec('curl', ['-s', '-i', '--noproxy', '', '-x', `http://${mesh.outbound}`, 'http://denied.example/x']);
  assert.match(proxied.stdout, /^HTTP\/1\.1 403/);
  assert.match(proxied.stdout, /x-dreammesh-error: MESH_ERR_EGRESS_DENIED/i);
  const c = await connectVia(mesh.outbound, 'denied.example:443');
  assert.equal(c.status, 403);
  assert.equal(c.headers['x-dreammesh-error'], 'MESH_ERR_EGRESS_DENIED');
  c.socket.destroy();
  const port = await connectVia(mesh.outbound, '127.0.0.2:22');
  assert.equal(port.status, 403);
  assert.equal(port.headers['x-dreammesh-error'], 'MESH_ERR_EGRESS_DENIED');
  const { data } = await readAll(port.socket, port.rest);
  assert.match(data.toString(), /port 22 is not allowed/);
  const explicit = await rawExchange(mesh.outbound, 'GET / HTTP/1.1\r\nHost: denied.example\r\nConnection: close\r\n\r\n');
  assert.match(explicit, /^HTTP\/1\.1 403/);
  const m = await metrics();
  assert.ok(metricValue(m, 'dreammesh_tunnels_total', { mode: 'proxy', kind: 'egress', outcome: 'denied' }) >= 2);
});

test('CONNECT to a mesh service reaches one of its endpoints; a refused endpoint is skipped', async () => {
  const c = await connectVia(mesh.outbound, 'users:80');
  assert.equal(c.status, 200);
  c.socket.write('GET /tunnelled HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n');
  const { data } = await readAll(c.socket, c.rest);
  const text = data.toString();
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.match(text, /"name":"users-v[12]"/);
  assert.match(text, /"url":"\/tunnelled"/);
  // flaky = [dead port, users-v1]: every CONNECT still lands on users-v1.
  for (let i = 0; i < 4; i++) {
    const f = await connectVia(mesh.outbound, 'flaky.mesh:9999');
    assert.equal(f.status, 200, `attempt ${i}`);
    f.socket.end('GET /f HTTP/1.1\r\nHost: flaky\r\nConnection: close\r\n\r\n');
    assert.match((await readAll(f.socket, f.rest)).data.toString(), /"name":"users-v1"/);
  }
});

test('Python urllib honours http_proxy/https_proxy and NO_PROXY', async () => {
  const script = [
    'import json, os, ssl, sys, urllib.request',
    'print(json.loads(urllib.request.urlopen("http://users/py", timeout=10).read())["name"])',
    'ctx = ssl.create_default_context(cafile=sys.argv[1])',
    'print(urllib.request.urlopen("https://secure/py-tls", timeout=10, context=ctx).read().decode().strip())',
    'print(json.loads(urllib.request.urlopen(sys.argv[2], timeout=10).read())["headers"].get("via", "direct"))',
  ].join('\n');
  const { stdout } = await exec('python3', ['-c', script, cert.certFile, `http://127.0.0.1:${v2.port}/np`], { env: envWith(proxyEnv) });
  const [name, secure, via] = stdout.trim().split('\n');
  assert.match(name!, /^users-v[12]$/);
  assert.equal(secure, 'secure /py-tls');
  assert.equal(via, 'direct', 'NO_PROXY destination reached directly');
});

test('Java 17 HttpClient with JAVA_TOOL_OPTIONS from dreammesh env (http and https through CONNECT)', async (t) => {
  const java = await exec('java', ['-version']).then(
    () => true,
    () => false,
  );
  if (!java) return t.skip('java is not installed (scripts/setup-system.sh installs openjdk-17-jre-headless)');
  const store = join(dir, 'trust.p12');
  await exec('keytool', ['-importcert', '-noprompt', '-alias', 'test', '-file', cert.certFile, '-keystore', store, '-storepass', 'changeit', '-storetype', 'PKCS12']);
  const src = join(dir, 'ProxyProbe.java');
  await writeFile(
    src,
    `import java.net.URI;
import java.net.http.*;
public class ProxyProbe {
  public static void main(String[] a) throws Exception {
    var client = HttpClient.newHttpClient();
    for (String u : a) {
      var res = client.send(HttpRequest.newBuilder(URI.create(u)).build(), HttpResponse.BodyHandlers.ofString());
      System.out.println(res.statusCode() + " " + res.body().trim());
    }
  }
}
`,
  );
  const env = envWith({ JAVA_TOOL_OPTIONS: `${proxyEnv.JAVA_TOOL_OPTIONS} -Djavax.net.ssl.trustStore=${store} -Djavax.net.ssl.trustStorePassword=changeit` });
  const { stdout } = await exec('java', [src, 'http://users/java', 'https://secure/java-tls'], { env, timeout: 60_000 });
  const [plain, secure] = stdout.trim().split('\n');
  assert.match(plain!, /^200 \{"name":"users-v[12]".*"url":"\/java"/);
  assert.equal(secure, '200 secure /java-tls');
});

test('undici EnvHttpProxyAgent with the values from dreammesh env', async () => {
  const agent = new EnvHttpProxyAgent({ httpProxy: proxyEnv.HTTP_PROXY, httpsProxy: proxyEnv.HTTPS_PROXY, noProxy: proxyEnv.NO_PROXY, requestTls: { ca: cert.cert } });
  try {
    const r = await request('http://users/undici', { dispatcher: agent });
    assert.equal(r.statusCode, 200);
    assert.match(((await r.body.json()) as { name: string }).name, /^users-v[12]$/);
    const s = await request('https://secure/undici-tls', { dispatcher: agent });
    assert.equal(await s.body.text(), 'secure /undici-tls\n');
    const seen = v2.seen.length;
    const d = await request(`http://127.0.0.1:${v2.port}/undici-direct`, { dispatcher: agent });
    const body = (await d.body.json()) as { headers: Record<string, string> };
    assert.equal(body.headers.via, undefined, 'NO_PROXY destination reached directly');
    assert.equal(v2.seen.length, seen + 1);
  } finally {
    await agent.close();
  }
});
