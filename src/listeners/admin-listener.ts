// The admin API: /ready /live /metrics /config /clusters /certs. Loopback by default; read-only.
import { createServer, type Server } from 'node:http';
import type { MeshConfig } from '../config/schema.js';
import type { CaptureLog } from '../steering/capture-log.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Registry } from '../registry/registry.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { IdentityStore } from '../tls/identity-store.js';
import { oneLine } from '../tls/workload-identity.js';

/** The config in force, with when it was loaded (a reload replaces it). */
export interface ConfigInForce {
  readonly config: MeshConfig;
  /** 1 at start, +1 for every reload that was applied. */
  readonly version: number;
  readonly loadedAt: Date;
  /** The file it came from (absent for a sidecar started from an object). */
  readonly source: string | undefined;
}

export interface AdminDeps {
  current(): ConfigInForce;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly clusters: ClusterManager;
  state(): { ready: boolean; draining: boolean };
  /** Recent captured connections (redirect verify). */
  readonly captures?: CaptureLog;
  /** The mTLS identity: /certs shows it, and /ready is false once it is about to expire. */
  readonly identity?: IdentityStore | undefined;
}

/** The identity in force, for people: who we are, until when, signed by whom. */
function certsBody(store: IdentityStore | undefined): unknown {
  if (store === undefined) return { mtls: false, message: 'no mtls identity configured (mtls.certFile, keyFile, caFile)' };
  const id = store.identity;
  return {
    mtls: true,
    subject: oneLine(id.leaf.subject),
    spiffeId: id.spiffeId,
    service: id.service,
    serial: id.leaf.serialNumber,
    notBefore: id.notBefore.toISOString(),
    notAfter: id.notAfter.toISOString(),
    secondsToExpiry: store.secondsToExpiry(),
    issuer: oneLine(id.leaf.issuer),
    caSubjects: id.caSubjects,
    rotations: store.generation - 1,
  };
}

function json(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function redactConfig(config: MeshConfig): unknown {
  const etcd = config.registry.etcd;
  if (etcd?.auth === undefined) return config;
  return { ...config, registry: { ...config.registry, etcd: { ...etcd, auth: { username: etcd.auth.username, password: '<redacted>' } } } };
}

export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'admin endpoints are read-only (GET)' });
    switch (path) {
      case '/live':
        return json(res, 200, { live: true });
      case '/ready': {
        const s = deps.state();
        // "now" before health(): a registry that is current (etcd with a live watch) reports its
        // sync time as the moment it is asked, so its staleness is exactly 0.
        const now = Date.now();
        const registry = deps.registry.health();
        const certOk = deps.identity?.usable() ?? true;
        const ready = s.ready && !s.draining && certOk;
        return json(res, ready ? 200 : 503, {
          ready,
          draining: s.draining,
          registry,
          stalenessSeconds: registry.lastSyncMs ? Math.max(0, now - registry.lastSyncMs) / 1000 : null,
          ...(deps.identity !== undefined ? { mtls: { certUsable: certOk, secondsToExpiry: deps.identity.secondsToExpiry() } } : {}),
        });
      }
      case '/metrics': {
        const now = Date.now();
        const h = deps.registry.health();
        deps.metrics.registryConnected.set({ backend: h.backend }, h.connected ? 1 : 0);
        if (h.lastSyncMs > 0) deps.metrics.registryStaleness.set({ backend: h.backend }, Math.max(0, now - h.lastSyncMs) / 1000);
        deps.metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
            res.end(text);
          },
          (e: unknown) => json(res, 500, { error: String(e) }),
        );
        return;
      }
      case '/config': {
        const c = deps.current();
        return json(res, 200, { version: c.version, loadedAt: c.loadedAt.toISOString(), source: c.source ?? null, config: redactConfig(c.config) });
      }
      case '/clusters': {
        const now = Date.now();
        const table = deps.clusters.table;
        const config = deps.current().config;
        return json(res, 200, {
          registryVersion: table.version,
          clusters: deps.clusters.allClusters().map((c) => ({
            service: c.name,
            lb: config.services[c.name]?.lb ?? config.lb,
            endpoints: c.endpointStates().map((s) => ({
              address: s.endpoint.address,
              weight: s.endpoint.weight,
              labels: s.endpoint.labels,
              mtls: s.endpoint.mtls === true,
              activeRequests: s.active,
              healthy: !s.isEjected(now),
              ejectedForMs: s.isEjected(now) ? s.ejectedUntil - now : 0,
              consecutiveFailures: s.consecutiveFailures,
            })),
          })),
        });
      }
      case '/verify/capture': {
        // ?client=<ip>&port=<port>: did this sidecar capture that connection, and to where?
        const q = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
        const port = Number(q.get('port'));
        const client = q.get('client') ?? '';
        if (client === '' || !Number.isInteger(port) || port < 1 || port > 65535) return json(res, 400, { error: 'expected ?client=<ip>&port=<port>' });
        const r = deps.captures?.find(client, port);
        return r === undefined ? json(res, 404, { captured: false }) : json(res, 200, { captured: true, originalDst: r.originalDst, at: new Date(r.at).toISOString() });
      }
      case '/certs':
        return json(res, 200, certsBody(deps.identity));
      default:
        return json(res, 404, { error: `no admin endpoint ${path}`, endpoints: ['/ready', '/live', '/metrics', '/config', '/clusters', '/certs', '/verify/capture'] });
    }
  });
}
