// The built-in load generator, run as its own process (inside a network namespace and as
// the app's uid for transparent rows). Reads one job from argv, prints one JSON result.
// Used where wrk cannot go (Unix sockets, CONNECT tunnels), for fixed-rate latency, and
// for bulk throughput; undici does the HTTP so the generator is not a parser of our own.
import { connect as netConnect, type Socket } from 'node:net';
import { createHistogram, performance } from 'node:perf_hooks';
import type { Pool, buildConnector } from 'undici';
import { requireOptional } from '../../src/core/optional-dependency.js';
import type { LoadTarget, ThroughputResult, LatencyResult, BulkResult } from './target.js';
import { exitWithParent } from './exit-with-parent.js';

export type Job =
  | { readonly kind: 'throughput'; readonly target: LoadTarget; readonly connections: number; readonly seconds: number; readonly newConnection: boolean }
  | { readonly kind: 'latency'; readonly target: LoadTarget; readonly connections: number; readonly seconds: number; readonly rate: number }
  | { readonly kind: 'bulk'; readonly target: LoadTarget; readonly bytes: number };

function openSocket(t: LoadTarget): Socket {
  const s = 'unix' in t.transport ? netConnect(t.transport.unix) : netConnect(t.transport.tcp.port, t.transport.tcp.host);
  s.setNoDelay(true);
  return s;
}

/** Connects to the row's entry point; for CONNECT rows, opens the tunnel first. */
function connector(t: LoadTarget): buildConnector.connector {
  return (_opts, cb) => {
    const s = openSocket(t);
    const fail = (e: Error): void => {
      s.destroy();
      cb(e, null);
    };
    s.once('error', fail);
    s.once('connect', () => {
      if (t.shape !== 'connect') {
        s.off('error', fail);
        cb(null, s);
        return;
      }
      s.write(`CONNECT ${t.authority} HTTP/1.1\r\nHost: ${t.authority}\r\n\r\n`);
      let head = Buffer.alloc(0);
      const onData = (c: Buffer): void => {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', onData);
        s.pause();
        if (!/^HTTP\/1\.[01] 200/.test(head.toString('latin1', 0, 12))) {
          fail(new Error(`CONNECT refused: ${head.toString('latin1', 0, end)}`));
          return;
        }
        if (end + 4 < head.length) s.unshift(head.subarray(end + 4));
        s.off('error', fail);
        cb(null, s);
      };
      s.on('data', onData);
    });
  };
}

function poolFor(t: LoadTarget, connections: number): { pool: Pool; path: (p: string) => string } {
  const { Pool } = requireOptional<typeof import('undici')>('undici', 'the bench load generator');
  const pool = new Pool(`http://${t.authority}`, { connections, pipelining: 1, connect: connector(t), keepAliveTimeout: 60_000 });
  const path = t.shape === 'absolute' ? (p: string): string => `http://${t.authority}${p}` : (p: string): string => p;
  return { pool, path };
}

async function throughput(job: Extract<Job, { kind: 'throughput' }>): Promise<ThroughputResult> {
  const { pool, path } = poolFor(job.target, job.connections);
  const p = path('/');
  const deadline = performance.now() + job.seconds * 1000;
  let requests = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      try {
        const r = await pool.request({ path: p, method: 'GET', reset: job.newConnection });
        await r.body.dump();
        if (r.statusCode === 200) requests++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: job.connections }, worker));
  const seconds = (performance.now() - t0) / 1000;
  await pool.destroy();
  return { requests, errors, seconds, rps: requests / seconds };
}

async function latency(job: Extract<Job, { kind: 'latency' }>): Promise<LatencyResult> {
  const { pool, path } = poolFor(job.target, job.connections);
  const p = path('/');
  const h = createHistogram();
  const interval = 1000 / job.rate;
  const total = Math.round(job.rate * job.seconds);
  let sent = 0;
  let done = 0;
  let errors = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const fire = (scheduled: number): void => {
      pool
        .request({ path: p, method: 'GET' })
        .then(
          async (r) => {
            await r.body.dump();
            if (r.statusCode === 200) h.record(Math.max(1, Math.round((performance.now() - scheduled) * 1e6)));
            else errors++;
          },
          () => {
            errors++;
          },
        )
        .finally(() => {
          if (++done === total) resolve();
        });
    };
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) fire(start + interval * sent++);
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  await pool.destroy();
  const ms = (q: number): number => (h.count === 0 ? NaN : h.percentile(q) / 1e6);
  return { rate: job.rate, requests: h.count, errors, p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9) };
}

async function bulk(job: Extract<Job, { kind: 'bulk' }>): Promise<BulkResult> {
  const { pool, path } = poolFor(job.target, 1);
  const t0 = performance.now();
  const r = await pool.request({ path: path(`/bulk?bytes=${job.bytes}`), method: 'GET' });
  let bytes = 0;
  for await (const c of r.body) bytes += (c as Buffer).length;
  const seconds = (performance.now() - t0) / 1000;
  await pool.destroy();
  return { bytes, seconds, gbps: (bytes * 8) / seconds / 1e9 };
}

async function run(job: Job): Promise<unknown> {
  switch (job.kind) {
    case 'throughput':
      return throughput(job);
    case 'latency':
      return latency(job);
    case 'bulk':
      return bulk(job);
  }
}

exitWithParent();
run(JSON.parse(process.argv[2] ?? '{}') as Job).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
