#!/usr/bin/env node
// Indicative per-request cost of transparent vs explicit vs direct, root only, inside network
// namespaces it creates and deletes (test/helpers/netns): one sidecar, one upstream, the client
// as uid 1001; direct = an excluded CIDR to the same server. Keep-alive by default; NEWCONN=1 for
// a new connection per request. Needs `npm run build` first.
//   node scripts/transparent-cost.mjs [nftables,iptables-nft,iptables-legacy] [rounds] [requests]
// Prints per backend the median µs/request of each path over interleaved rounds.
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

async function client([rounds, n, explicitAddr, host, tUrl, dUrl]) {
  const agent = new http.Agent({ keepAlive: process.env.NEWCONN !== '1', maxSockets: 1 });
  const get = (url, headers) =>
    new Promise((res, rej) => {
      const r = http.get(url, { agent, headers }, (resp) => {
        resp.resume();
        resp.on('end', res);
      });
      r.on('error', rej);
    });
  const modes = { direct: () => get(dUrl, {}), explicit: () => get(`http://${explicitAddr}/x`, { host }), transparent: () => get(tUrl, {}) };
  const res = { direct: [], explicit: [], transparent: [] };
  for (let r = 0; r < Number(rounds); r++) {
    for (const [m, f] of Object.entries(modes)) {
      for (let i = 0; i < 20; i++) await f();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < Number(n); i++) await f();
      res[m].push(Number(process.hrtime.bigint() - t0) / 1e3 / Number(n));
    }
  }
  const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(JSON.stringify(Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { medianUsPerReq: Math.round(med(v)), rounds: v.map(Math.round) }]))));
  agent.destroy();
}

async function main([backends = 'nftables,iptables-nft,iptables-legacy', rounds = '5', requests]) {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces and capture rules)');
  const { createNetnsPair, startServers } = await import('../dist/test/helpers/netns.js');
  const { spawnSidecar, CLI } = await import('../dist/test/helpers/sidecar.js');
  const n = requests ?? (process.env.NEWCONN === '1' ? '150' : '1000');
  const net = createNetnsPair('cost');
  let servers;
  let mesh;
  try {
    servers = await startServers(net.server);
    mesh = await spawnSidecar(
      {
        listeners: { outbound: '127.0.0.1:15001', inbound: '0.0.0.0:15006', admin: '127.0.0.1:15000' },
        accessLog: { enabled: false },
        transparent: { enabled: true, redirect: { proxyUid: 0, excludeOutboundCidrs: [`${net.serverIp2}/32`] } },
        services: { web: { endpoints: [`${net.serverIp}:8080`] } },
      },
      { prefix: ['ip', 'netns', 'exec', net.client] },
    );
    for (const backend of backends.split(',')) {
      net.sh(net.client, [process.execPath, CLI, 'redirect', 'install', '--config', mesh.configFile, '--backend', backend]);
      try {
        const args = [rounds, n, '127.0.0.1:15001', 'web', `http://${net.serverIp}:8080/x`, `http://${net.serverIp2}:8080/x`];
        const out = net.sh(net.client, ['env', `NEWCONN=${process.env.NEWCONN ?? ''}`, 'setpriv', '--reuid=1001', '--regid=1001', '--clear-groups', process.execPath, self, 'client', ...args]);
        console.log(backend, out.trim());
      } finally {
        net.sh(net.client, [process.execPath, CLI, 'redirect', 'uninstall']);
      }
    }
  } finally {
    await mesh?.stop();
    servers?.kill('SIGKILL');
    net.destroy();
  }
}

const [cmd, ...rest] = process.argv.slice(2);
(cmd === 'client' ? client(rest) : main([cmd, ...rest].filter((x) => x !== undefined))).catch((e) => {
  console.error(`transparent-cost: ${e.message}`);
  process.exitCode = 1;
});
