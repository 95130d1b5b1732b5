// One place for the HTTP/1 engine tests to get "a sidecar process + scripted upstreams + a way to
// send through each entry": explicit (Host names the service), forward proxy (absolute-form) and
// inbound (listener → app). The sidecar runs as a child process so that a crash is seen as a
// dead process and its sockets can be counted in /proc/<pid>/fd. The service `svc` has two
// endpoints (two scripted upstreams, so outlier ejection is possible: maxEjectionPercent 50);
// the app behind the inbound listener is the first of them.
import { before, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
import { spawnSidecar, type SpawnedSidecar } from './sidecar.js';
import { startScriptedUpstream, type ScriptedUpstream, type ScriptedUpstreamOptions, type SeenRequest } from './http1-upstream.js';
import { rawRequest, head, hostPort, type RawResult, type Step } from './http1-wire.js';

export type EntryName = 'explicit' | 'proxy' | 'inbound';
export const ENTRY_NAMES: readonly EntryName[] = ['explicit', 'proxy', 'inbound'];

export interface Entry {
  readonly name: EntryName;
  /** Where a client connects. */
  readonly address: string;
  /** Host header value. */
  readonly host: string;
  /** The request-target for a path (absolute-form for the proxy entry). */
  target(path: string): string;
  /** A whole request head: request line, Host first, then `headers`. */
  head(method: string, path: string, headers?: [string, string][]): string;
  /** URL a client library uses (with `proxy` for the proxy entry, a Host override for explicit). */
  readonly url: (path: string) => string;
  /** Proxy URL for clients of the proxy entry. */
  readonly proxy: string | undefined;
  /** Host header a client must set (explicit), undefined when the URL already says it. */
  readonly hostOverride: string | undefined;
  /** curl arguments that reach `path` through this entry. */
  curl(path: string): string[];
}

export const SERVICE = 'svc';

export function makeEntries(outbound: string, inbound: string, service = SERVICE): Entry[] {
  const mk = (name: EntryName, address: string, abs: boolean): Entry => ({
    name,
    address,
    host: service,
    target: (path) => (abs ? `http://${service}${path}` : path),
    head: (method, path, headers = []) => head(method, abs ? `http://${service}${path}` : path, [['Host', service], ...headers]),
    url: (path) => (abs ? `http://${service}${path}` : `http://${address}${path}`),
    proxy: abs ? `http://${address}` : undefined,
    hostOverride: name === 'explicit' ? service : undefined,
    curl: (path) => (name === 'explicit' ? ['-H', `Host: ${service}`, `http://${address}${path}`] : name === 'proxy' ? ['-x', `http://${address}`, `http://${service}${path}`] : [`http://${address}${path}`]),
  });
  return [mk('explicit', outbound, false), mk('proxy', outbound, true), mk('inbound', inbound, false)];
}

export interface SocketReport {
  /** Open file descriptors. */
  readonly fds: number;
  /** Accepted connections on the outbound and inbound listeners. */
  readonly downstream: number;
  /** TCP sockets whose peer closed but the sidecar did not (state CLOSE_WAIT). */
  readonly closeWait: number;
  /** TCP sockets that are neither listeners nor downstream (upstream pools, admin). */
  readonly other: number;
}

/** Sockets of a process, classified by /proc/<pid>/net/tcp{,6} (Linux). */
export function socketReport(pid: number, listenerPorts: number[]): SocketReport {
  const fdDir = `/proc/${pid}/fd`;
  const inodes = new Set<string>();
  let fds = 0;
  for (const fd of readdirSync(fdDir)) {
    fds += 1;
    try {
      const l = readlinkSync(`${fdDir}/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(l);
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  let downstream = 0;
  let closeWait = 0;
  let other = 0;
  for (const file of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9]!)) continue;
      const localPort = parseInt(f[1]!.split(':')[1]!, 16);
      const state = f[3]!;
      if (state === '0A') continue; // LISTEN
      if (state === '08') closeWait += 1;
      if (listenerPorts.includes(localPort)) downstream += 1;
      else other += 1;
    }
  }
  return { fds, downstream, closeWait, other };
}

/** Sum of every series of a metric whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(name + '{') || line.startsWith(name + ' '))) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface EndpointHealth {
  address: string;
  healthy: boolean;
  consecutiveFailures: number;
  ejectedForMs: number;
}

export interface Mesh {
  /** The current sidecar process (a new one after revive()). */
  readonly sidecar: SpawnedSidecar;
  /** How many times revive() had to start a new process because the previous one died. */
  readonly deaths: number;
  /**
   * Starts a new sidecar process if the current one died (so that one crash does not fail every
   * later test for the same reason); entries are updated in place. Resolves true if it did.
   */
  revive(): Promise<boolean>;
  readonly upstreams: ScriptedUpstream[];
  readonly entries: Entry[];
  entry(name: EntryName): Entry;
  /** Every request the upstreams saw, in arrival order per upstream. */
  seen(): SeenRequest[];
  /** Requests whose target contains `tag`. */
  seenWith(tag: string): SeenRequest[];
  /** Asserts the process is alive and a plain GET through `entry` (or every entry) answers 200. */
  alive(entry?: Entry | EntryName, why?: string): Promise<void>;
  /** GET on the admin API with Connection: close (so it leaves no socket behind). */
  admin(path: string): Promise<RawResult>;
  metrics(): Promise<string>;
  endpoints(): Promise<EndpointHealth[]>;
  sockets(): SocketReport;
  /** The socket report once no downstream or CLOSE_WAIT socket is left (waits up to 3 s): a baseline. */
  quietSockets(): Promise<SocketReport>;
  /** Waits (bounded) until no downstream socket and no CLOSE_WAIT socket is left, and fds are back near `baseline`. */
  noLeaks(baseline: SocketReport, why: string, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface MeshOptions {
  /** Extra top-level config (timeouts, limits, outlier...), merged over the defaults. */
  cfg?: Record<string, unknown>;
  /** Per-service fields for `svc` (timeouts...). */
  service?: Record<string, unknown>;
  /** How many scripted upstream endpoints `svc` has (default 2). */
  endpoints?: number;
  /** Options of every scripted upstream (e.g. idleCloseMs). */
  upstream?: Omit<ScriptedUpstreamOptions, 'host' | 'port'>;
}

export async function startMesh(opts: MeshOptions = {}): Promise<Mesh> {
  const upstreams: ScriptedUpstream[] = [];
  for (let i = 0; i < (opts.endpoints ?? 2); i++) upstreams.push(await startScriptedUpstream(`up${i + 1}`, opts.upstream ?? {}));
  const spawnIt = (): Promise<SpawnedSidecar> =>
    spawnSidecar({
      app: upstreams[0]!.address,
      ...(opts.cfg ?? {}),
      services: { [SERVICE]: { endpoints: upstreams.map((u) => u.address), ...(opts.service ?? {}) } },
    });
  let sidecar: SpawnedSidecar;
  try {
    sidecar = await spawnIt();
  } catch (e) {
    await Promise.all(upstreams.map((u) => u.close()));
    throw e;
  }
  const entries = makeEntries(sidecar.outbound, sidecar.inbound);
  let listenerPorts = [hostPort(sidecar.outbound).port, hostPort(sidecar.inbound).port];
  let pid = sidecar.child.pid!;
  let deaths = 0;
  const deadWhy = (): string | null => {
    const c = sidecar.child;
    if (c.exitCode === null && c.signalCode === null) return null;
    return `sidecar process died (exit ${c.exitCode}, signal ${c.signalCode}); stderr tail:\n${sidecar.stderr().split('\n').slice(-15).join('\n')}`;
  };
  const mesh: Mesh = {
    get sidecar() {
      return sidecar;
    },
    get deaths() {
      return deaths;
    },
    revive: async () => {
      if (deadWhy() === null) return false;
      deaths += 1;
      await sidecar.stop();
      sidecar = await spawnIt();
      entries.splice(0, entries.length, ...makeEntries(sidecar.outbound, sidecar.inbound));
      listenerPorts = [hostPort(sidecar.outbound).port, hostPort(sidecar.inbound).port];
      pid = sidecar.child.pid!;
      return true;
    },
    upstreams,
    entries,
    entry: (name) => entries.find((e) => e.name === name)!,
    seen: () => upstreams.flatMap((u) => u.seen),
    seenWith: (tag) => upstreams.flatMap((u) => u.seen).filter((r) => r.target.includes(tag)),
    alive: async (entry, why = '') => {
      const list = entry === undefined ? entries : [typeof entry === 'string' ? mesh.entry(entry) : entry];
      for (const e of list) {
        const dead = deadWhy();
        if (dead !== null) assert.fail(`${why ? why + ': ' : ''}${dead}`);
        const r = await rawRequest(e.address, [{ write: e.head('GET', '/alive', [['Connection', 'close']]) }], { ms: 4000, untilResponses: 1 });
        const final = r.responses.find((m) => m.status >= 200);
        assert.equal(final?.status, 200, `${why ? why + ': ' : ''}a plain GET through ${e.name} should still answer 200; got ${JSON.stringify(r.data.toString('latin1').slice(0, 300))} ${r.error ?? ''}`);
      }
    },
    admin: (path) => rawRequest(sidecar.admin, [{ write: `GET ${path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n` }], { ms: 4000 }),
    metrics: async () => (await mesh.admin('/metrics')).responses[0]?.body.toString() ?? '',
    endpoints: async () => {
      const r = await mesh.admin('/clusters');
      const j = JSON.parse(r.responses[0]?.body.toString() ?? '{}') as { clusters?: { service: string; endpoints: EndpointHealth[] }[] };
      return j.clusters?.find((c) => c.service === SERVICE)?.endpoints ?? [];
    },
    sockets: () => socketReport(pid, listenerPorts),
    quietSockets: async () => {
      const start = Date.now();
      let r = socketReport(pid, listenerPorts);
      while ((r.downstream > 0 || r.closeWait > 0) && Date.now() - start < 3000) {
        await new Promise((res) => setTimeout(res, 50));
        r = socketReport(pid, listenerPorts);
      }
      return r;
    },
    noLeaks: async (baseline, why, ms = 8000) => {
      if (deaths > 0) assert.fail(`${why}: the sidecar process died ${deaths} time(s) during these tests, so its sockets cannot be compared with the baseline`);
      const start = Date.now();
      let last = mesh.sockets();
      for (;;) {
        last = mesh.sockets();
        const fdsBack = last.fds - last.other <= baseline.fds - baseline.other + 2;
        if (last.downstream === 0 && last.closeWait === 0 && fdsBack) return;
        if (Date.now() - start > ms) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`${why}: sockets not released within ${ms} ms: now ${JSON.stringify(last)}, baseline ${JSON.stringify(baseline)}`);
    },
    stop: async () => {
      await sidecar.stop();
      await Promise.all(upstreams.map((u) => u.close()));
    },
  };
  return mesh;
}

/** Sends `steps` through an entry with a fresh connection. */
export function via(entry: Entry, steps: Step[], opts: { ms?: number; methods?: string[]; untilResponses?: number } = {}): Promise<RawResult> {
  return rawRequest(entry.address, steps, opts);
}

/** The final (non-1xx) responses of a result. */
export function finals(r: RawResult): RawResult['responses'] {
  return r.responses.filter((m) => m.status >= 200 || m.status === 101);
}

/** "200 MESH_ERR_X" style summary for assertion messages. */
export function describeResult(r: RawResult): string {
  return JSON.stringify(r.data.toString('latin1').slice(0, 400)) + (r.error ? ` (${r.error})` : '') + (r.closed ? ' [closed]' : ' [open]');
}

export function errorCode(m: { headers: [string, string][] } | undefined): string | undefined {
  return m?.headers.find(([k]) => k.toLowerCase() === 'x-dreammesh-error')?.[1];
}

/**
 * One mesh for the enclosing file or describe block: started (and checked alive, with a socket
 * baseline taken) before its tests, revived before each one, stopped after them all. `ready`
 * receives the mesh and the baseline for the caller's own variables.
 */
export function meshPerSuite(ready: (mesh: Mesh, baseline: SocketReport) => void, opts: MeshOptions = {}): void {
  let mesh: Mesh | undefined;
  before(async () => {
    mesh = await startMesh(opts);
    await mesh.alive();
    ready(mesh, await mesh.quietSockets());
  });
  beforeEach(async () => {
    await mesh?.revive();
  });
  after(async () => {
    await mesh?.stop();
  });
}

/** Unique request tags; "_" ends each, so tag 1 never matches tag 10. */
export function tagger(): (what: string) => string {
  let seq = 0;
  return (what) => `${what}-${++seq}_`;
}
