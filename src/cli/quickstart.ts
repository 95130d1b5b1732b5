// `dreammesh quickstart`: two demo `users` instances (v1, v2) and a sidecar from
// examples/quickstart/mesh.yaml, then the curl lines to try. Ctrl-C stops everything.
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { parseConfigObject } from '../config/load.js';
import { Sidecar } from '../sidecar.js';
import { isMeshError } from '../core/errors.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/quickstart/mesh.yaml', import.meta.url));

function demoInstance(port: number, version: string): Promise<Server> {
  const s = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ service: 'users', version, path: req.url, traceparent: req.headers.traceparent }) + '\n');
  });
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/** Moves every 150xx port of the example to base+xx, so several quickstarts can coexist. */
function rebase(text: string, base: number): string {
  return text.replace(/127\.0\.0\.1:15(\d{3})/g, (_m, off: string) => `127.0.0.1:${base + Number(off)}`);
}

const USAGE = `usage: dreammesh quickstart [--base-port N]
  --base-port N   move every port: admin N, outbound N+1, inbound N+6, demo instances N+101 and N+102
                  (default 15000; use another when those ports are taken, e.g. 25000)
`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { 'base-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`dreammesh quickstart: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const base = Number(values['base-port'] ?? 15000);
  if (!Number.isInteger(base) || base < 1024 || base > 65000) {
    process.stderr.write('dreammesh quickstart: --base-port must be an integer between 1024 and 65000\n');
    return 2;
  }
  const config = parseConfigObject(parse(rebase(await readFile(EXAMPLE, 'utf8'), base)), EXAMPLE);
  const servers: Server[] = [];
  let sidecar: Sidecar | undefined;
  try {
    servers.push(await demoInstance(base + 101, 'v1'), await demoInstance(base + 102, 'v2'));
    sidecar = new Sidecar(config);
    await sidecar.start();
  } catch (e) {
    for (const s of servers) s.close();
    process.stderr.write(`dreammesh quickstart: ${isMeshError(e) ? e.message : (e as Error).message}\n(another quickstart running? try --base-port 25000)\n`);
    return 1;
  }
  const out = config.listeners.outbound;
  const admin = config.listeners.admin;
  process.stderr.write(
    [
      '',
      'DreamMesh quickstart is running: a sidecar and two instances of "users" (v1, v2).',
      'try:',
      `  curl -H 'Host: users' http://${out}/hello                 # explicit mode: name the service in Host`,
      `  curl -H 'Host: users' -H 'x-beta: yes' http://${out}/hi   # route rule: beta testers get v2`,
      `  curl -x http://${out} http://users/hello                  # forward-proxy mode, same route`,
      `  curl -H 'Host: nosuch' http://${out}/                     # unknown service: 404 listing known ones`,
      `  curl http://${admin}/clusters                             # endpoints and their health`,
      `  curl http://${admin}/metrics | grep dreammesh_requests     # Prometheus metrics`,
      'access log lines appear below; Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  const running = sidecar;
  return new Promise((resolve) => {
    const stop = (): void => {
      running.stop(2000).then(
        () => {
          for (const s of servers) s.close();
          resolve(0);
        },
        () => resolve(1),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
