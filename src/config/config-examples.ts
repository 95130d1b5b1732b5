// Worked examples for docs/config.md, one per feature. Each `yaml` is a complete mesh.yaml;
// `files` are files it names (written next to it when the docs test validates it).

export interface ConfigExample {
  readonly title: string;
  readonly text: string;
  readonly yaml: string;
  readonly files?: readonly { readonly name: string; readonly text: string }[];
}

export const CONFIG_EXAMPLES: readonly ConfigExample[] = [
  {
    title: 'Services and endpoints',
    text: `
Each service lists its instances. An endpoint is \`"host:port"\` or an object with \`address\`,
\`weight\` (relative share for the load balancer, default 1; 0 = never picked) and \`labels\`
(free-form; route splits select on them). \`lb\` picks the balancer for one service.`,
    yaml: `
services:
  users:
    lb: round-robin                 # weighted round-robin: exact 3:1 shares over a cycle
    endpoints:
      - 127.0.0.1:9101
      - { address: 127.0.0.1:9102, weight: 3, labels: { version: v2, zone: eu-1 } }
  orders:
    endpoints: ["10.0.0.7:8080", "[fd00::7]:8080"]   # lb: the global default (least-request)
`,
  },
  {
    title: 'Route rules: match on headers and path prefix',
    text: `
\`routes\` are tried in order and the first whose \`match\` fits the request wins. \`match.pathPrefix\`
compares the start of the path; \`match.headers\` lists exact values that must all be present
(header names are case-insensitive); an empty or absent \`match\` fits every request. The winning
route's \`split\` says which endpoints may serve the request (absent: all of them). When a service
has routes and none fits, the request is answered \`404\` with \`x-dreammesh-error:
MESH_ERR_NO_ROUTE_MATCH\` and the route names; end with a route without \`match\` to avoid that.`,
    yaml: `
services:
  users:
    endpoints:
      - { address: 127.0.0.1:9101, labels: { version: v1 } }
      - { address: 127.0.0.1:9102, labels: { version: v2 } }
    routes:
      - name: beta-testers          # name used in logs, /config and the 404 body
        match: { headers: { x-beta: "yes" } }
        split: [{ labels: { version: v2 }, weight: 1 }]
      - name: v1-api
        match: { pathPrefix: /api/v1/ }
        split: [{ labels: { version: v1 }, weight: 1 }]
      - name: everything-else       # no match: fits every request
`,
  },
  {
    title: 'Weighted splits: a 1% canary',
    text: `
A \`split\` divides a route's traffic between label subsets by \`weight\` (relative: 1 and 99 is 1%).
An entry whose \`labels\` are empty (or left out) takes **the endpoints no other entry of the split
selects**, so below v2 gets 1% and every other endpoint (labelled or not) 99%. Within one split
the selectors must be disjoint: \`{version: v2}\` and \`{zone: eu-1}\` could both match one
endpoint and are refused when the config loads, naming the field. An entry that selects no
endpoint at the moment answers \`503 MESH_ERR_NO_HEALTHY_ENDPOINT\` for its share.`,
    yaml: `
services:
  users:
    endpoints:
      - 127.0.0.1:9101
      - 127.0.0.1:9103
      - { address: 127.0.0.1:9102, labels: { version: v2 } }
    routes:
      - name: canary
        split:
          - { labels: { version: v2 }, weight: 1 }   # 1%
          - { labels: {}, weight: 99 }               # the rest: 127.0.0.1:9101 and :9103
`,
  },
  {
    title: 'Timeouts and retries, globally and per service',
    text: `
\`timeouts\` and \`retries\` apply to every service; a service's own \`timeouts\`/\`retries\` override
single fields and inherit the others. Retries happen only for idempotent requests that never
reached an endpoint (connection refused, connect timeout, a name that does not resolve), on
another endpoint, within the retry budget. Each timeout is kept to the millisecond.`,
    yaml: `
timeouts: { connectMs: 500, requestMs: 5000, idleMs: 30000 }
retries: { attempts: 2, budgetPercent: 20, minPerSecond: 10 }
services:
  reports:
    endpoints: [127.0.0.1:9301]
    timeouts: { requestMs: 60000 }  # slow reports; connectMs and idleMs stay global
    retries: { attempts: 0 }
`,
  },
  {
    title: 'Services from a file',
    text: `
\`registry.file\` names a YAML file with a \`services:\` map of endpoints; it is read at start (a
missing or broken file stops the start, and \`dreammesh validate\` reports it) and re-read whenever
it changes (a broken edit keeps the last good version). Its services are merged with the
config's own \`services:\`. Route rules, \`lb\`, timeouts and retries stay in the config.`,
    yaml: `
registry:
  file: services.yaml
services:
  users:                            # policy for a service whose endpoints come from the file
    lb: round-robin
`,
    files: [
      {
        name: 'services.yaml',
        text: `
services:
  users:
    endpoints: [127.0.0.1:9101, 127.0.0.1:9102]
  orders:
    endpoints: [127.0.0.1:9201]
`,
      },
    ],
  },
  {
    title: 'Destinations outside the mesh',
    text: `
Under \`egress.policy: registry-only\` (the default) only mesh services and what \`egress.allow\`
lists are reachable through the sidecar; anything else is \`403 MESH_ERR_EGRESS_DENIED\`.
\`egress.bypass\` is what apps should reach directly: \`dreammesh env --mode proxy\` puts it into
\`NO_PROXY\`. Details: [forward-proxy.md](forward-proxy.md).`,
    yaml: `
egress:
  policy: registry-only
  allow: [api.stripe.com:443, "*.googleapis.com:443", "10.20.0.0/16"]
  bypass: [db.internal, .corp.example]
`,
  },
  {
    title: 'Listeners on Unix sockets',
    text: `
Any listener may be \`unix:/path\` (the directory must exist). Apps then use
\`DREAMMESH_OUTBOUND=unix:/run/dreammesh/outbound.sock\` (explicit mode; forward-proxy settings need
TCP). \`app\` is where the inbound listener delivers.`,
    yaml: `
listeners:
  outbound: unix:/tmp/dreammesh-outbound.sock
  inbound: 127.0.0.1:15006
  admin: 127.0.0.1:15000
app: unix:/tmp/app.sock
services:
  users: { endpoints: [127.0.0.1:9101] }
`,
  },
  {
    title: 'Transparent capture',
    text: `
\`transparent.enabled\` makes the outbound listener recover original destinations (it needs the
native addon; \`dreammesh validate\` says when it is missing). \`transparent.redirect\` holds the
capture rules that \`dreammesh redirect install\` writes; \`proxyUid\` (or \`proxyGid\`) is required
there. Details: [transparent.md](transparent.md).`,
    yaml: `
transparent:
  enabled: true
  redirect:
    proxyUid: 1337
    excludeOutboundCidrs: [169.254.169.254/32]
    excludeOutboundPorts: [5432]
services:
  users: { endpoints: ["10.0.0.7:8080", "10.0.0.8:8080"] }
`,
  },
  {
    title: 'Limits, outlier ejection, access log and drain',
    text: `
\`limits\` are Envoy-style circuit breakers; \`outlier\` ejects an endpoint after consecutive
failures for \`baseEjectionMs\` × the number of its ejections (at most \`maxEjectionPercent\` of a
service at once). The access log is JSON lines on stdout or in \`accessLog.path\`.`,
    yaml: `
limits: { maxConnectionsPerEndpoint: 64, maxPendingRequests: 1024 }
outlier: { consecutiveFailures: 3, baseEjectionMs: 5000, maxEjectionPercent: 50 }
accessLog: { enabled: true, sample: 0.1, path: /tmp/dreammesh-access.log }
logLevel: warn
drainTimeoutMs: 5000
services:
  users: { endpoints: [127.0.0.1:9101] }
`,
  },
];
