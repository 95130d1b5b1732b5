// Real HTTP clients driven by the engine tests: curl, Python (urllib and http.client) and Java 17
// (java.net.http.HttpClient, single-file source launch). Each program gets the entries as JSON,
// runs its cases, and prints one JSON result per case, so one process start covers every entry.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Entry } from './http1-mesh.js';

const run = promisify(execFile);

export interface ClientResult {
  entry: string;
  case: string;
  status: number;
  /** Response body (text). */
  body: string;
  /** HTTP version the client reports, when it does. */
  version?: string;
  error?: string;
}

export interface ClientEntry {
  name: string;
  /** host:port to connect to. */
  address: string;
  /** Service name for Host (explicit) or the absolute URL (proxy). */
  service: string;
  kind: 'explicit' | 'proxy' | 'direct';
}

export function clientEntry(e: Entry): ClientEntry {
  return { name: e.name, address: e.address, service: e.host, kind: e.name === 'explicit' ? 'explicit' : e.name === 'proxy' ? 'proxy' : 'direct' };
}

/** The environment without any proxy variable, so that only what a test sets applies. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy', 'JAVA_TOOL_OPTIONS']) delete env[k];
  return { ...env, ...extra };
}

export interface CurlResult {
  code: number;
  status: number;
  body: string;
  /** curl -v trace (stderr). */
  trace: string;
}

/** Runs curl with `args` (-s -v added); the status comes from -w. */
export async function curl(args: string[], timeoutMs = 20_000): Promise<CurlResult> {
  try {
    const r = await run('curl', ['-s', '-v', '--noproxy', '', '-m', String(Math.ceil(timeoutMs / 1000)), '-w', '\n%{http_code}', ...args], { env: cleanEnv(), maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs + 2000 });
    const i = r.stdout.lastIndexOf('\n');
    return { code: 0, status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i), trace: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    const out = x.stdout ?? '';
    const i = out.lastIndexOf('\n');
    return { code: typeof x.code === 'number' ? x.code : -1, status: Number(out.slice(i + 1)) || 0, body: out.slice(0, Math.max(i, 0)), trace: x.stderr ?? String(e) };
  }
}

const PYTHON = String.raw`
import json, sys, urllib.request, http.client
entries = json.loads(sys.argv[1])
big = b'p' * 300000
out = []
def rec(e, case, fn):
    try:
        status, body, version = fn()
        out.append({'entry': e['name'], 'case': case, 'status': status, 'body': body, 'version': version})
    except Exception as ex:
        out.append({'entry': e['name'], 'case': case, 'status': 0, 'body': '', 'error': repr(ex)})
for e in entries:
    host, port = e['address'].rsplit(':', 1)
    svc = e['service']
    def url(path):
        return ('http://%s%s' % (svc, path)) if e['kind'] == 'proxy' else ('http://%s%s' % (e['address'], path))
    def opener():
        return urllib.request.build_opener(urllib.request.ProxyHandler({'http': 'http://' + e['address']} if e['kind'] == 'proxy' else {}))
    def hdrs():
        return {'Host': svc} if e['kind'] == 'explicit' else {}
    def urllib_get():
        r = opener().open(urllib.request.Request(url('/py/urllib-get'), headers=hdrs()), timeout=10)
        return r.status, r.read().decode(), 'HTTP/%d.%d' % divmod(r.version, 10)
    def urllib_post():
        r = opener().open(urllib.request.Request(url('/py/urllib-post'), data=b'hello', headers=hdrs()), timeout=10)
        return r.status, r.read().decode(), None
    def target(path):
        return url(path) if e['kind'] == 'proxy' else path
    def httpclient_keepalive():
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        bodies = []
        for i in range(3):
            c.request('GET', target('/py/keepalive/%d' % i), headers={'Host': svc})
            r = c.getresponse()
            bodies.append(json.loads(r.read()))
            if r.status != 200:
                return r.status, json.dumps(bodies), None
        c.close()
        return 200, json.dumps(bodies), None
    def httpclient_expect():
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request('POST', target('/py/expect'), body=big, headers={'Host': svc, 'Expect': '100-continue', 'Content-Type': 'application/octet-stream'})
        r = c.getresponse()
        b = r.read().decode()
        c.close()
        return r.status, b, None
    def httpclient_chunked():
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request('PUT', target('/py/chunked'), body=iter([b'a' * 1000, b'b' * 2000, b'c']), headers={'Host': svc}, encode_chunked=True)
        r = c.getresponse()
        b = r.read().decode()
        c.close()
        return r.status, b, None
    def httpclient_head():
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request('HEAD', target('/py/head'), headers={'Host': svc})
        r = c.getresponse()
        b = r.read()
        c.request('GET', target('/py/after-head'), headers={'Host': svc})
        r2 = c.getresponse()
        b2 = r2.read().decode()
        c.close()
        return (r.status if len(b) == 0 else -1) * 1000 + r2.status, b2, None
    rec(e, 'urllib GET', urllib_get)
    rec(e, 'urllib POST', urllib_post)
    rec(e, 'http.client keep-alive x3', httpclient_keepalive)
    rec(e, 'http.client POST Expect 300 KB', httpclient_expect)
    rec(e, 'http.client chunked PUT', httpclient_chunked)
    rec(e, 'http.client HEAD then GET', httpclient_head)
print(json.dumps(out))
`;

const JAVA = String.raw`
import java.net.*;
import java.net.http.*;
import java.time.Duration;
import java.util.*;

public class Http1Client {
  static String esc(String s) { return s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n").replace("\r", "\\r"); }
  public static void main(String[] a) throws Exception {
    StringBuilder out = new StringBuilder("[");
    byte[] big = new byte[2 * 1024 * 1024];
    Arrays.fill(big, (byte) 'j');
    for (int i = 0; i + 3 < a.length; i += 4) {
      String name = a[i], kind = a[i + 1], address = a[i + 2], svc = a[i + 3];
      int colon = address.lastIndexOf(':');
      String host = address.substring(0, colon);
      int port = Integer.parseInt(address.substring(colon + 1));
      HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5));
      if (kind.equals("proxy")) b.proxy(ProxySelector.of(new InetSocketAddress(host, port)));
      HttpClient h2default = b.build();
      HttpClient h1 = b.version(HttpClient.Version.HTTP_1_1).build();
      String base = kind.equals("proxy") ? "http://" + svc : "http://" + address;
      String[][] cases = { {"GET default version (h2c upgrade offer)", "GET", "d", "0"}, {"GET HTTP/1.1", "GET", "1", "0"}, {"POST hello", "POST", "1", "0"},
                           {"POST 2 MiB expectContinue", "POST", "1", "2"}, {"POST 2 MiB default version", "POST", "d", "2"} };
      for (String[] c : cases) {
        String path = "/java/" + c[0].replaceAll("[^A-Za-z0-9]+", "-");
        HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(15));
        if (kind.equals("explicit")) rb.header("Host", svc);
        if (c[1].equals("GET")) rb.GET();
        else if (c[3].equals("2")) rb.POST(HttpRequest.BodyPublishers.ofByteArray(big));
        else rb.POST(HttpRequest.BodyPublishers.ofString("hello"));
        if (c[3].equals("2") && c[2].equals("1")) rb.expectContinue(true);
        String status, body, version, err = "";
        try {
          HttpResponse<String> r = (c[2].equals("d") ? h2default : h1).send(rb.build(), HttpResponse.BodyHandlers.ofString());
          status = String.valueOf(r.statusCode()); body = r.body(); version = r.version().toString();
        } catch (Exception ex) { status = "0"; body = ""; version = ""; err = ex.toString(); }
        if (out.length() > 1) out.append(",");
        out.append("{\"entry\":\"" + name + "\",\"case\":\"" + esc(c[0]) + "\",\"status\":" + status + ",\"body\":\"" + esc(body) + "\",\"version\":\"" + version + "\",\"error\":\"" + esc(err) + "\"}");
      }
    }
    System.out.println(out.append("]"));
  }
}
`;

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'dm-clients-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Python 3 urllib and http.client cases against each entry. */
export function runPython(entries: ClientEntry[]): Promise<ClientResult[]> {
  return withDir(async (dir) => {
    const file = join(dir, 'client.py');
    await writeFile(file, PYTHON);
    const r = await run('python3', [file, JSON.stringify(entries)], { env: cleanEnv(), timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return JSON.parse(r.stdout) as ClientResult[];
  });
}

/** Java 17 HttpClient cases against each entry (Host is a restricted header: allowed by a property). */
export function runJava(entries: ClientEntry[]): Promise<ClientResult[]> {
  return withDir(async (dir) => {
    const file = join(dir, 'Http1Client.java');
    await writeFile(file, JAVA);
    const args = entries.flatMap((e) => [e.name, e.kind, e.address, e.service]);
    const r = await run('java', ['-Djdk.httpclient.allowRestrictedHeaders=host', file, ...args], { env: cleanEnv(), timeout: 90_000, maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(r.stdout) as ClientResult[];
  });
}

/**
 * The Java cases run through `exec` (e.g. inside a network namespace as another uid), from a
 * source file written into `dir` (which that uid must be able to read).
 */
export async function runJavaAs(prefix: string[], entries: ClientEntry[], dir: string, exec: (cmd: string[]) => { status: number; stdout: string; stderr: string }): Promise<ClientResult[]> {
  const file = join(dir, 'Http1Client.java');
  await writeFile(file, JAVA, { mode: 0o644 });
  const args = entries.flatMap((e) => [e.name, e.kind, e.address, e.service]);
  const r = exec([...prefix, 'java', '-Djdk.httpclient.allowRestrictedHeaders=host', file, ...args]);
  if (r.status !== 0) throw new Error(`java exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout) as ClientResult[];
}

export function whyNoJava(): Promise<string | null> {
  return run('java', ['-version']).then(
    () => null,
    () => 'java is not installed',
  );
}
