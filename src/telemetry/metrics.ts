// Every metric DreamMesh exports, in one place, so names and labels stay consistent across
// modes. Label `mode` is the steering mode (explicit | proxy | transparent | inbound).
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: PromRegistry;
  /** HTTP requests answered, by mode, service (or "egress" / "-"), and status code. */
  readonly requests: Counter<'mode' | 'service' | 'code'>;
  readonly requestDuration: Histogram<'mode' | 'service'>;
  /** Upstream connections currently open / opened in total, per service. */
  readonly upstreamConnections: Gauge<'service'>;
  readonly upstreamConnectionsOpened: Counter<'service'>;
  /** TCP tunnels (CONNECT and opaque transparent), by mode, kind (service|egress) and outcome. */
  readonly tunnels: Counter<'mode' | 'kind' | 'outcome'>;
  readonly tunnelBytes: Counter<'mode' | 'direction'>;
  readonly activeTunnels: Gauge<'mode'>;
  /** Protocol detection results for transparent connections. */
  readonly detected: Counter<'protocol'>;
  /** Inbound requests by caller: `unknown` until the caller is authenticated (mTLS); never from a header. */
  readonly inboundRequests: Counter<'caller' | 'code'>;
  readonly configReloadFailures: Counter<'source'>;
  readonly registryRejected: Counter<'backend'>;
  readonly registryConnected: Gauge<'backend'>;
  readonly registryStaleness: Gauge<'backend'>;
  readonly endpointEjections: Counter<'service'>;
  readonly retries: Counter<'service' | 'outcome'>;
  /** Downstream connections closed at accept because the listener is at limits.maxDownstreamConnections. */
  readonly downstreamRejected: Counter<'listener'>;
  /** Downstream connections closed by a timeout: header (head too slow), idle (keep-alive), body (stalled upload). */
  readonly downstreamTimeouts: Counter<'listener' | 'kind'>;
  /** Protocol switches (101, e.g. WebSocket) that ended, by how they ended. */
  readonly upgrades: Counter<'mode' | 'service' | 'outcome'>;
  /** DNS queries (dns.enabled) by outcome (mesh, mesh_nodata, forwarded, servfail, formerr, notimp, refused, dropped) and query type. */
  readonly dnsQueries: Counter<'outcome' | 'qtype'>;
  /** mTLS: seconds until the workload certificate in force expires (negative once it has). */
  readonly mtlsCertExpiry: Gauge;
  /** mTLS: identity file reloads, by outcome (rotated | rejected). */
  readonly mtlsIdentityReloads: Counter<'outcome'>;
  readonly mtlsIdentityReloadFailures: Counter;
  /** mTLS: inbound connections closed before any request: plaintext in strict mode, failed handshakes. */
  readonly mtlsInboundRefused: Counter<'reason'>;
  /** Inbound requests refused by authz.allow, by caller. */
  readonly authzDenied: Counter<'caller'>;
  /** gRPC calls answered (HTTP/2), by mode, service and grpc-status (the upstream's, or the sidecar's own). */
  readonly grpcCalls: Counter<'mode' | 'service' | 'grpc_status'>;
  /** Downstream HTTP/2 connections ended by the sidecar for abuse or protocol errors, by reason. */
  readonly h2Goaway: Counter<'reason'>;
}

export function createMetrics(): Metrics {
  const registry = new PromRegistry();
  collectDefaultMetrics({ register: registry, prefix: 'dreammesh_' });
  const r = [registry];
  return {
    registry,
    requests: new Counter({ name: 'dreammesh_requests_total', help: 'HTTP requests answered', labelNames: ['mode', 'service', 'code'], registers: r }),
    requestDuration: new Histogram({
      name: 'dreammesh_request_duration_seconds',
      help: 'Time from request head received to response end',
      labelNames: ['mode', 'service'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    upstreamConnections: new Gauge({ name: 'dreammesh_upstream_connections', help: 'Open upstream connections', labelNames: ['service'], registers: r }),
    upstreamConnectionsOpened: new Counter({ name: 'dreammesh_upstream_connections_opened_total', help: 'Upstream connections opened', labelNames: ['service'], registers: r }),
    tunnels: new Counter({ name: 'dreammesh_tunnels_total', help: 'TCP tunnels (CONNECT, opaque) finished', labelNames: ['mode', 'kind', 'outcome'], registers: r }),
    tunnelBytes: new Counter({ name: 'dreammesh_tunnel_bytes_total', help: 'Bytes relayed through tunnels', labelNames: ['mode', 'direction'], registers: r }),
    activeTunnels: new Gauge({ name: 'dreammesh_tunnels_active', help: 'Tunnels currently open', labelNames: ['mode'], registers: r }),
    detected: new Counter({ name: 'dreammesh_detected_protocol_total', help: 'Transparent connections by detected protocol', labelNames: ['protocol'], registers: r }),
    inboundRequests: new Counter({ name: 'dreammesh_inbound_requests_total', help: 'Inbound requests delivered to the app, by caller', labelNames: ['caller', 'code'], registers: r }),
    configReloadFailures: new Counter({ name: 'dreammesh_config_reload_failures_total', help: 'Reloads rejected; the last good config stays in force', labelNames: ['source'], registers: r }),
    registryRejected: new Counter({ name: 'dreammesh_registry_rejected_records_total', help: 'Malformed registry records ignored', labelNames: ['backend'], registers: r }),
    registryConnected: new Gauge({ name: 'dreammesh_registry_connected', help: '1 while the registry backend is reachable', labelNames: ['backend'], registers: r }),
    registryStaleness: new Gauge({ name: 'dreammesh_registry_staleness_seconds', help: 'Seconds since the last successful registry sync', labelNames: ['backend'], registers: r }),
    endpointEjections: new Counter({ name: 'dreammesh_endpoint_ejections_total', help: 'Endpoints ejected by outlier detection', labelNames: ['service'], registers: r }),
    downstreamRejected: new Counter({
      name: 'dreammesh_downstream_connections_rejected_total',
      help: 'Connections closed at accept: the listener is at limits.maxDownstreamConnections',
      labelNames: ['listener'],
      registers: r,
    }),
    downstreamTimeouts: new Counter({ name: 'dreammesh_downstream_timeouts_total', help: 'Downstream connections closed by a timeout (header, idle, body)', labelNames: ['listener', 'kind'], registers: r }),
    upgrades: new Counter({ name: 'dreammesh_upgrades_total', help: 'Upgraded connections (101 Switching Protocols) that ended', labelNames: ['mode', 'service', 'outcome'], registers: r }),
    mtlsCertExpiry: new Gauge({ name: 'dreammesh_mtls_cert_expiry_seconds', help: 'Seconds until the workload certificate in force expires', registers: r }),
    mtlsIdentityReloads: new Counter({ name: 'dreammesh_mtls_identity_reloads_total', help: 'Identity file changes: rotated (in force) or rejected (last good kept)', labelNames: ['outcome'], registers: r }),
    mtlsIdentityReloadFailures: new Counter({ name: 'dreammesh_mtls_identity_reload_failures_total', help: 'Identity files that could not be used; the last good identity stays', registers: r }),
    mtlsInboundRefused: new Counter({ name: 'dreammesh_mtls_inbound_refused_total', help: 'Inbound connections refused: plaintext in strict mode or a failed mTLS handshake', labelNames: ['reason'], registers: r }),
    authzDenied: new Counter({ name: 'dreammesh_authz_denied_total', help: 'Inbound requests refused by authz.allow (403)', labelNames: ['caller'], registers: r }),
    grpcCalls: new Counter({ name: 'dreammesh_grpc_calls_total', help: 'gRPC calls answered, by grpc-status', labelNames: ['mode', 'service', 'grpc_status'], registers: r }),
    h2Goaway: new Counter({ name: 'dreammesh_h2_goaway_total', help: 'Downstream HTTP/2 connections ended with GOAWAY (abuse limits, protocol errors)', labelNames: ['reason'], registers: r }),
    retries: new Counter({ name: 'dreammesh_retries_total', help: 'Retries attempted or refused by the budget', labelNames: ['service', 'outcome'], registers: r }),
    dnsQueries: new Counter({ name: 'dreammesh_dns_queries_total', help: 'DNS queries answered, forwarded or dropped', labelNames: ['outcome', 'qtype'], registers: r }),
  };
}
