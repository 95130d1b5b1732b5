// Small real-socket clients for tests: a raw TCP exchange and a fetch through the sidecar.
import { connect } from 'node:net';
import { request } from 'undici';

/** Sends raw bytes, returns everything received until the server closes or `ms` passes. */
export function rawExchange(address: string, bytes: string | Buffer, ms = 3000): Promise<string> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('end', done);
    s.on('error', done);
    s.write(bytes);
  });
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/** GET (or other) through the sidecar's outbound listener naming `host` in the Host header. */
export async function viaSidecar(outbound: string, host: string, path = '/', init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const r = await request(`http://${outbound}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { host, ...(init.headers ?? {}) },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: <T>() => JSON.parse(text) as T };
}

export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(url);
  return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> };
}

/** Value of one metric series from Prometheus text, 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && line.split(' ')[0] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
