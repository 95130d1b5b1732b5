// The one source of truth for configuration: static types, defaults and descriptions all come
// from here, and `dreammesh schema` exports it as JSON Schema for editors.
import { CloneType, Type, type Static, type TObject, type TPartial, type TString } from '@sinclair/typebox';

const hostPort = (description: string, def?: string): TString => Type.String({ description, minLength: 1, ...(def === undefined ? {} : { default: def }) });

export const EndpointSchema = Type.Union(
  [
    Type.String({ description: 'host:port of one service instance', minLength: 3 }),
    Type.Object(
      {
        address: Type.String({ description: 'host:port of the instance', minLength: 3 }),
        weight: Type.Optional(Type.Integer({ description: 'Relative load-balancing weight (default 1)', minimum: 0, maximum: 10000 })),
        labels: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Labels such as version or zone; route splits select on them' })),
        mtls: Type.Optional(
          Type.Boolean({ description: "The endpoint is a sidecar's inbound listener with mTLS on: reached over TLS 1.3 with this sidecar's certificate, and its SPIFFE ID must name the service (default false)" }),
        ),
        protocol: Type.Optional(
          Type.Union([Type.Literal('http1'), Type.Literal('http2'), Type.Literal('auto')], {
            description:
              'What the endpoint speaks. auto (default): the downstream protocol, HTTP/2 (h2c, prior knowledge) for HTTP/2 and gRPC requests, HTTP/1.1 for HTTP/1 requests. http2: h2c only, HTTP/1 requests to it are refused (502 MESH_ERR_UPSTREAM_PROTOCOL). http1: HTTP/1.1 only, HTTP/2 requests are forwarded as HTTP/1.1 and gRPC calls are refused (grpc-status 13, MESH_ERR_UPSTREAM_PROTOCOL)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'An endpoint: "host:port" or { address, weight, labels, mtls, protocol }' },
);

export const LbPolicySchema = Type.Union([Type.Literal('round-robin'), Type.Literal('least-request')], {
  description: 'Load balancer: round-robin (weighted) or least-request (power of two choices)',
});

export const RouteSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'Name used in logs, /config and 404 bodies (default: route-<index>)' })),
    match: Type.Object(
      {
        pathPrefix: Type.Optional(Type.String({ description: 'Matches when the request path starts with this', pattern: '^/' })),
        headers: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Exact header values that must all be present (names are case-insensitive)' })),
      },
      { additionalProperties: false, default: {}, description: 'What a request must look like for this route; {} matches every request' },
    ),
    split: Type.Optional(
      Type.Array(
        Type.Object(
          {
            labels: Type.Record(Type.String(), Type.String(), {
              description:
                "Endpoints carrying all these labels form this entry's subset; {} means the endpoints no other entry of this split selects. Selectors of one split must not overlap (two entries need different values of some label)",
              default: {},
            }),
            weight: Type.Number({ description: 'Share of traffic relative to the other entries (1 and 99 make a 1% canary)', minimum: 0 }),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, description: 'Weighted split across label subsets; absent means all endpoints' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const TimeoutsSchema = Type.Object(
  {
    connectMs: Type.Integer({ description: 'Upstream connect timeout', minimum: 1, default: 1000 }),
    requestMs: Type.Integer({ description: 'Time allowed for the upstream response headers (0 = none)', minimum: 0, default: 15000 }),
    idleMs: Type.Integer({ description: 'Upstream: no bytes either way for this long while a request uses the connection (504); also the idle limit of CONNECT, opaque and upgraded tunnels', minimum: 1, default: 60000 }),
  },
  { additionalProperties: false, default: {} },
);

/** Timeouts of the downstream side: per listener, never per service. */
export const DownstreamTimeoutsSchema = Type.Object({
  requestHeaderMs: Type.Integer({
    description: 'The whole request head must arrive within this time after its first byte; beyond it 408 MESH_ERR_REQUEST_HEADER_TIMEOUT and the connection closes (as HAProxy timeout http-request)',
    minimum: 1,
    default: 10000,
  }),
  downstreamIdleMs: Type.Integer({
    description: 'A downstream connection idle between requests, or a request body that stalls, for this long is closed (a stalled body gets 408 MESH_ERR_DOWNSTREAM_TIMEOUT)',
    minimum: 1,
    default: 60000,
  }),
});

export const RetriesSchema = Type.Object(
  {
    attempts: Type.Integer({ description: 'Extra attempts after the first, for idempotent requests failing to connect', minimum: 0, maximum: 10, default: 2 }),
    budgetPercent: Type.Number({ description: 'Retries allowed as a percentage of recent requests', minimum: 0, maximum: 100, default: 20 }),
    minPerSecond: Type.Integer({ description: 'Retries always allowed per second, whatever the traffic', minimum: 0, default: 10 }),
  },
  { additionalProperties: false, default: {}, description: 'Retries of idempotent requests whose connection failed, on another endpoint, within a budget' },
);

/**
 * Per-service overrides of a global section: every field optional and without defaults, so
 * whatever a service leaves out falls back to the global value rather than a default.
 */
function overrides<T extends TObject>(section: T, description: string): TPartial<T> {
  const p = Type.Partial(CloneType(section), { description }) as TPartial<T> & { default?: unknown };
  delete p.default;
  for (const v of Object.values(p.properties) as { default?: unknown }[]) delete v.default;
  return p;
}

export const ServiceSchema = Type.Object(
  {
    endpoints: Type.Array(EndpointSchema, { description: 'Instances of the service', default: [] }),
    lb: Type.Optional(LbPolicySchema),
    routes: Type.Optional(
      Type.Array(RouteSchema, { description: 'Route rules, first match wins; none means all traffic to all endpoints; when there are rules and none matches, the answer is 404 MESH_ERR_NO_ROUTE_MATCH' }),
    ),
    timeouts: Type.Optional(overrides(TimeoutsSchema, 'Overrides of the global timeouts for this service')),
    retries: Type.Optional(overrides(RetriesSchema, 'Overrides of the global retries for this service')),
  },
  { additionalProperties: false },
);

export const EtcdSchema = Type.Object(
  {
    endpoints: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'etcd client URLs, e.g. http://127.0.0.1:2379' }),
    prefix: Type.String({ description: 'Key prefix; instances live under <prefix>services/<service>/<instance-id>', default: '/dreammesh/', pattern: '/$' }),
    leaseTtlSeconds: Type.Integer({ description: "TTL of this sidecar's registration lease", minimum: 2, default: 10 }),
    dialTimeoutMs: Type.Integer({ description: 'Time allowed to reach etcd', minimum: 1, default: 2000 }),
    cacheFile: Type.Optional(
      Type.String({ description: 'Where the last snapshot is cached on disk (default: $DREAMMESH_STATE_DIR, else $XDG_STATE_HOME/dreammesh or ~/.local/state/dreammesh, one file per endpoints+prefix)' }),
    ),
    withdrawGraceMs: Type.Integer({
      description: 'On graceful stop: time between withdrawing this instance from etcd and closing the listeners, so peers stop sending first (bounded by drainTimeoutMs)',
      minimum: 0,
      default: 1000,
    }),
    auth: Type.Optional(
      Type.Object(
        { username: Type.String({ description: 'etcd user' }), password: Type.String({ description: 'etcd password (shown as <redacted> in /config)' }) },
        { additionalProperties: false, description: 'etcd username/password authentication' },
      ),
    ),
    tls: Type.Optional(
      Type.Object(
        {
          caFile: Type.Optional(Type.String({ description: "PEM file of the CA that signed the etcd servers' certificates (required when tls is set)" })),
          certFile: Type.Optional(Type.String({ description: 'PEM client certificate, for etcd with client-certificate auth' })),
          keyFile: Type.Optional(Type.String({ description: 'PEM private key of certFile' })),
        },
        { additionalProperties: false, description: 'TLS to etcd (https:// endpoints); files are read at start' },
      ),
    ),
  },
  { additionalProperties: false, description: 'Fleet registry on etcd: this sidecar registers `service` and watches every service (docs/registry-etcd.md)' },
);

export const RedirectSchema = Type.Object(
  {
    backend: Type.Union([Type.Literal('auto'), Type.Literal('iptables'), Type.Literal('iptables-nft'), Type.Literal('iptables-legacy'), Type.Literal('nftables')], {
      default: 'auto',
      description: 'Rule backend; auto uses the one where DreamMesh rules already are, else the one the host already uses',
    }),
    proxyUid: Type.Optional(Type.Integer({ minimum: 0, description: "Traffic from this uid (the sidecar's) is never captured; proxyUid or proxyGid is required" })),
    proxyGid: Type.Optional(Type.Integer({ minimum: 0, description: 'Traffic from this gid is never captured' })),
    outboundPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Port captured outbound traffic is redirected to (default: the outbound listener port)' })),
    inboundPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Port captured inbound traffic is redirected to (default: the inbound listener port)' })),
    includeOutboundCidrs: Type.Array(Type.String({ minLength: 1 }), { default: ['*'], description: '"*" or CIDRs whose outbound traffic is captured ([] = no outbound capture)' }),
    excludeOutboundCidrs: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'CIDRs never captured (databases, metadata servers, ...)' }),
    excludeOutboundPorts: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), { default: [], description: 'Destination ports never captured' }),
    includeInboundPorts: Type.Array(Type.Union([Type.Literal('*'), Type.Integer({ minimum: 1, maximum: 65535 })]), {
      default: [],
      description: 'Local ports whose inbound traffic is captured ("*" = all; [] = no inbound capture)',
    }),
    excludeInboundPorts: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), { default: [], description: 'Local ports never captured inbound (e.g. 22)' }),
    ipv6: Type.Boolean({ default: false, description: 'Also capture IPv6 (the outbound listener must then listen on [::1] or [::])' }),
    captureDns: Type.Boolean({
      default: false,
      description: "Also redirect the app's DNS queries (UDP and TCP port 53, IPv4) to dns.listen, except the proxy uid/gid's; needs dns.enabled and dns.listen on an IPv4 loopback address",
    }),
    proxyMark: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 4294967295,
        description: 'SO_MARK the sidecar sets on every upstream socket (native addon, CAP_NET_ADMIN); the rules skip packets carrying it, so the sidecar may run as any uid (then proxyUid/proxyGid are optional)',
      }),
    ),
    inboundMode: Type.Union([Type.Literal('redirect'), Type.Literal('tproxy')], {
      default: 'redirect',
      description: 'How captured inbound connections reach the inbound listener: redirect (NAT) or tproxy (mangle TPROXY + policy routing; the listener opens with IP_TRANSPARENT; no NAT)',
    }),
    tproxyMark: Type.Integer({ minimum: 1, maximum: 4294967295, default: 0x4d4d, description: 'inboundMode tproxy: fwmark given to diverted packets and matched by the ip rule' }),
    tproxyOriginalSource: Type.Boolean({
      default: false,
      description:
        "inboundMode tproxy: connect to the app at the connection's original destination address, bound to the client's address (IP_TRANSPARENT), so the app's socket sees the real client; the app must listen on that address, not only on loopback",
    }),
    tproxyTable: Type.Integer({ minimum: 1, maximum: 4294967295, default: 15006, description: 'inboundMode tproxy: routing table holding "local default dev lo"' }),
  },
  { additionalProperties: false, default: {}, description: 'Capture rules written by `dreammesh redirect install` (and by the sidecar itself with failOpen)' },
);

export const DnsSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false, description: 'Run a DNS server that answers mesh service names with virtual IPs and forwards every other query (docs/transparent.md)' }),
    listen: hostPort('Where the DNS server listens, UDP and TCP (host:port)', '127.0.0.1:15053'),
    cidr: Type.String({ default: '240.240.0.0/16', minLength: 1, description: 'IPv4 range of the virtual IPs: one stable address per service, never routed anywhere but to the sidecar' }),
    ipv6Cidr: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'IPv6 range, /64 to /120 (e.g. the ULA fd00:d3e5::/112), for AAAA answers: a service gets the address at the same offset as its IPv4 one. Absent: AAAA queries for mesh names get an empty NOERROR answer, so clients use A',
      }),
    ),
    ttl: Type.Integer({ minimum: 0, maximum: 3600, default: 5, description: 'TTL in seconds of answers for mesh names' }),
    upstreams: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Resolvers (ip or ip:port, port 53 by default) that non-mesh queries are forwarded to, in order (default: the nameservers of /etc/resolv.conf at start)',
      }),
    ),
    upstreamTimeoutMs: Type.Integer({ minimum: 1, default: 2000, description: 'Time allowed to each upstream resolver; when all fail the answer is SERVFAIL' }),
    stateFile: Type.Optional(
      Type.String({ description: 'Where the service → virtual IP map is kept across restarts (default: $DREAMMESH_STATE_DIR, else $XDG_STATE_HOME/dreammesh or ~/.local/state/dreammesh, file dns-vips.json)' }),
    ),
  },
  { additionalProperties: false, default: {}, description: 'DNS for mesh names: `users`, `users.mesh`, `users.<domainSuffix>` resolve to a virtual IP routed to the service' },
);

export const MtlsSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('off'), Type.Literal('permissive'), Type.Literal('strict')], {
      default: 'off',
      description:
        'Inbound listener: off = plaintext only; permissive = TLS (mTLS) and plaintext on the same port (told apart by the first byte); strict = mTLS only, plaintext connections are closed and counted. Outbound mTLS to endpoints marked mtls works whenever the files are set',
    }),
    certFile: Type.Optional(
      Type.String({
        minLength: 1,
        description: "PEM workload certificate (leaf first, then intermediates); its URI SAN spiffe://<trustDomain>/service/<service> is this sidecar's identity. Watched: a new file is used for new connections",
      }),
    ),
    keyFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of certFile (watched with it)' })),
    caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM bundle of the CA certificates that peers must chain to (watched)' })),
    trustDomain: Type.String({ minLength: 1, pattern: '^[a-z0-9._-]+$', default: 'dreammesh.local', description: 'SPIFFE trust domain: peers must present spiffe://<trustDomain>/service/<name>' }),
    expiryMarginSeconds: Type.Integer({ minimum: 0, default: 300, description: '/ready turns false this many seconds before the certificate expires (and stays false once it has)' }),
    reloadIntervalMs: Type.Integer({ minimum: 100, default: 2000, description: 'The files are also checked this often (file events can be missed, e.g. on some volume mounts)' }),
    handshakeTimeoutMs: Type.Integer({ minimum: 1, default: 5000, description: 'Inbound: a TLS handshake must finish within this time, else the connection is closed' }),
  },
  { additionalProperties: false, default: {}, description: 'Mutual TLS between sidecars (docs/mtls.md). certFile, keyFile and caFile are required unless mode is off' },
);

export const AuthzSchema = Type.Object(
  {
    allow: Type.Array(
      Type.Object(
        {
          from: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }), { minItems: 1, description: 'Calling services (from their mTLS identity); absent = any caller, authenticated or not' })),
          methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { minItems: 1, description: 'HTTP methods (upper case); absent = any' })),
          paths: Type.Optional(Type.Array(Type.String({ pattern: '^/' }), { minItems: 1, description: 'Path prefixes; absent = any path' })),
        },
        { additionalProperties: false, description: 'Allows requests that match every field given' },
      ),
      {
        default: [],
        description: 'Inbound authorization: with rules present, a request that matches none is refused with 403 MESH_ERR_FORBIDDEN and never reaches the app; [] allows everything. Reloadable',
      },
    ),
  },
  { additionalProperties: false, default: {}, description: 'Who may call the app through the inbound listener' },
);

export const ConfigSchema = Type.Object(
  {
    service: Type.Optional(Type.String({ description: 'Name of the service this sidecar fronts (registered in etcd)', minLength: 1 })),
    instance: Type.Optional(
      Type.Object(
        {
          id: Type.Optional(Type.String({ description: 'Instance id within the service, the last etcd key segment (default: the address)', pattern: '^[^/\\s]{1,253}$' })),
          address: Type.Optional(
            Type.String({
              description: 'host:port other sidecars use to reach this instance (default: the bound inbound listener; when it binds 0.0.0.0, the first external IPv4 address)',
              minLength: 3,
            }),
          ),
          weight: Type.Integer({ minimum: 0, default: 1, description: 'Load-balancing weight peers give this instance' }),
          labels: Type.Record(Type.String(), Type.String(), { default: {}, description: "Labels peers' route splits select on (e.g. version: v2)" }),
        },
        { additionalProperties: false, description: 'How this sidecar registers itself in etcd (with `service` and registry.etcd)' },
      ),
    ),
    listeners: Type.Object(
      {
        outbound: hostPort('Outbound listener: explicit, forward-proxy and captured traffic (host:port or unix:/path)', '127.0.0.1:15001'),
        inbound: Type.Optional(
          hostPort(
            'Inbound listener, forwarding to app; only when app is set (default then: 0.0.0.0:15006). Without mTLS (mtls.mode off) it has no authentication: anyone who reaches it reaches the app, so bind it to a trusted network or turn mTLS on (docs/mtls.md); `dreammesh validate` warns when it is not loopback and mTLS is not strict',
          ),
        ),
        admin: hostPort('Admin API: /ready /live /metrics /config /clusters', '127.0.0.1:15000'),
      },
      { additionalProperties: false, default: {}, description: 'Where the sidecar listens' },
    ),
    app: Type.Optional(hostPort('Where the local application listens (host:port or unix:/path). Without it there is no inbound listener: a sidecar that fronts no app exposes nothing')),
    domainSuffixes: Type.Array(Type.String({ minLength: 1 }), {
      description: 'Suffixes stripped from a Host before the service lookup (users.mesh → users)',
      default: ['mesh', 'svc.cluster.local'],
    }),
    services: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }), ServiceSchema, {
      description: 'Inline registry: service name → endpoints and policy',
      default: {},
    }),
    registry: Type.Object(
      {
        file: Type.Optional(Type.String({ description: 'YAML file with a services: map, hot-reloaded on change' })),
        etcd: Type.Optional(EtcdSchema),
      },
      { additionalProperties: false, default: {}, description: 'Where services come from besides the inline services: map (merged)' },
    ),
    lb: Type.Union([Type.Literal('round-robin'), Type.Literal('least-request')], { default: 'least-request', description: 'Default load balancer' }),
    timeouts: Type.Composite([TimeoutsSchema, DownstreamTimeoutsSchema], { additionalProperties: false, default: {} }),
    retries: RetriesSchema,
    limits: Type.Object(
      {
        maxHeaderBytes: Type.Integer({ minimum: 1024, default: 16384, description: 'Largest accepted request head in bytes, counted exactly: request line, header lines and the final CRLF (431 beyond)' }),
        maxUriBytes: Type.Integer({ minimum: 64, default: 8192, description: 'Longest accepted request target (414 beyond)' }),
        maxConnectionsPerEndpoint: Type.Integer({ minimum: 1, default: 128, description: 'Pooled keep-alive connections per endpoint' }),
        maxPendingRequests: Type.Integer({ minimum: 1, default: 1024, description: 'Requests waiting for a pooled connection, per cluster (and for the app, inbound); beyond it 503 MESH_ERR_LIMIT_EXCEEDED at once' }),
        maxDownstreamConnections: Type.Integer({ minimum: 1, default: 4096, description: 'Open downstream connections per listener (outbound, inbound); beyond it new connections are closed at accept and counted' }),
        maxHeaderCount: Type.Integer({ minimum: 1, maximum: 10000, default: 100, description: 'Most header fields in a request head (431 beyond)' }),
      },
      { additionalProperties: false, default: {} },
    ),
    outlier: Type.Object(
      {
        consecutiveFailures: Type.Integer({ minimum: 1, default: 5, description: 'Connect failures / 5xx in a row that eject an endpoint' }),
        baseEjectionMs: Type.Integer({ minimum: 100, default: 10000, description: 'An ejection lasts this long times the number of times the endpoint was ejected (capped at 10)' }),
        maxEjectionPercent: Type.Integer({ minimum: 0, maximum: 100, default: 50, description: 'Most endpoints of one service ejected at once, in percent' }),
      },
      { additionalProperties: false, default: {}, description: 'Passive outlier ejection of failing endpoints' },
    ),
    egress: Type.Object(
      {
        policy: Type.Union([Type.Literal('allow-any'), Type.Literal('registry-only')], { default: 'registry-only', description: 'What to do with destinations that are not mesh services' }),
        allow: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          description:
            'External destinations allowed under registry-only: host, *.domain, *, IPv4/IPv6 address or CIDR, each with an optional :port or :low-high (IPv6 with a port in brackets: [2001:db8::/32]:443). Names match names and addresses match addresses; no DNS lookup',
        }),
        bypass: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          description:
            'Destinations apps reach directly, never through the sidecar: NO_PROXY entries (host, .domain, *.domain, IP, CIDR, optional :port) printed by `dreammesh env --mode proxy` after the loopback entries',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Destinations outside the mesh (docs/forward-proxy.md)' },
    ),
    transparent: Type.Object(
      {
        enabled: Type.Boolean({ default: false, description: 'Recover original destinations on the outbound listener (needs the native addon)' }),
        detectTimeoutMs: Type.Integer({ minimum: 1, default: 150, description: "How long to wait for the client's first bytes before treating the connection as opaque/server-first" }),
        opaquePorts: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), {
          default: [25, 3306, 5432, 6379, 11211, 27017, 9042, 1521, 1433],
          description: 'Destination ports proxied as opaque TCP without detection',
        }),
        redirect: RedirectSchema,
        failOpen: Type.Boolean({
          default: false,
          description: 'The sidecar installs the capture rules when it starts and removes them when it stops, so apps reach destinations directly while it is down',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Transparent capture (docs/transparent.md)' },
    ),
    accessLog: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Write one JSON line per request' }),
        sample: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'Fraction of requests logged (errors are always logged)' }),
        path: Type.Optional(Type.String({ description: 'File to append to (default: stdout)' })),
      },
      { additionalProperties: false, default: {}, description: 'The access log' },
    ),
    logLevel: Type.Union(
      ['trace', 'debug', 'info', 'warn', 'error', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'Level of the process log (JSON on stderr)' },
    ),
    drainTimeoutMs: Type.Integer({
      minimum: 0,
      default: 10000,
      description: 'After SIGTERM or SIGINT: how long in-flight requests and tunnels (CONNECT, opaque, WebSocket) may run before they are cut (logged MESH_ERR_DRAIN_TIMEOUT)',
    }),
    watchConfig: Type.Boolean({ default: false, description: 'Reload this config file when it changes, as SIGHUP does (an invalid file keeps the running config)' }),
    dns: DnsSchema,
    mtls: MtlsSchema,
    authz: AuthzSchema,
  },
  { additionalProperties: false, $id: 'https://dreammesh.dev/schema/mesh.json', title: 'DreamMesh sidecar configuration' },
);

export type MeshConfig = Static<typeof ConfigSchema>;
export type ServiceConfig = Static<typeof ServiceSchema>;
export type EndpointConfig = Static<typeof EndpointSchema>;
export type RouteConfig = Static<typeof RouteSchema>;
export type EtcdConfig = Static<typeof EtcdSchema>;
export type RedirectConfig = Static<typeof RedirectSchema>;
export type DnsConfig = Static<typeof DnsSchema>;
export type MtlsConfig = Static<typeof MtlsSchema>;
export type AuthzConfig = Static<typeof AuthzSchema>;
