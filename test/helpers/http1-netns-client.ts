// Raw HTTP/1 and WebSocket exchanges run as a separate process (inside a network namespace, as
// the application's uid, so that capture rules apply to it):
//   node http1-netns-client.js raw ADDRESS '<steps JSON>' '<opts JSON>'
//   node http1-netns-client.js ws ADDRESS '<request head>' '<messages JSON>' MS
//   node http1-netns-client.js undici ADDRESS      (request, a pipelined client, a streamed upload)
//   node http1-netns-client.js wslib ADDRESS       (the `ws` client library: text and binary echo)
// Steps and messages carry bytes as latin1 strings ({"write": "..."}; {"opcode": 1, "payload": "..."}).
// Prints one JSON line: the RawResult (bodies base64) or the WsSession (payloads base64).
import { rawRequest, type Step } from './http1-wire.js';
import { rawWsSession } from './ws-frames.js';
import { Readable } from 'node:stream';
// undici and ws load only for the kinds that use them: a raw exchange starts faster without.

const [kind, address, a, b, c] = process.argv.slice(2);
if (kind === 'raw') {
  const steps = JSON.parse(a ?? '[]') as Step[];
  const r = await rawRequest(address!, steps, JSON.parse(b ?? '{}') as { ms?: number; methods?: string[]; untilResponses?: number });
  process.stdout.write(
    JSON.stringify({
      data: r.data.toString('base64'),
      closed: r.closed,
      error: r.error,
      ms: r.ms,
    }) + '\n',
  );
} else if (kind === 'ws') {
  const msgs = (JSON.parse(b ?? '[]') as { opcode: number; payload: string; base64?: boolean }[]).map((m) => ({ opcode: m.opcode, payload: Buffer.from(m.payload, m.base64 ? 'base64' : 'latin1') }));
  const s = await rawWsSession(address!, a ?? '', msgs, Number(c ?? 6000));
  process.stdout.write(JSON.stringify({ ...s, frames: s.frames.map((f) => ({ opcode: f.opcode, payload: f.payload.toString('base64') })) }) + '\n');
} else if (kind === 'undici') {
  const { request, Client } = await import('undici');
  const out: unknown[] = [];
  const r = await request(`http://${address}/undici/get`);
  out.push([r.statusCode, ((await r.body.json()) as { target: string }).target]);
  const client = new Client(`http://${address}`, { pipelining: 10 });
  const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => client.request({ path: `/undici/p/${i}`, method: 'GET' }).then(async (x) => [x.statusCode, ((await x.body.json()) as { target: string }).target])));
  out.push(rs);
  async function* gen(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 8; i++) yield Buffer.alloc(64 * 1024, 0x41 + i);
  }
  const up = await client.request({ path: '/undici/stream', method: 'PUT', body: Readable.from(gen()) });
  out.push([up.statusCode, ((await up.body.json()) as { bodyBytes: number }).bodyBytes]);
  await client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
} else if (kind === 'wslib') {
  const { WebSocket } = await import('ws');
  const msgs: (string | Buffer)[] = ['one', Buffer.from([1, 2, 3]), 'three', Buffer.alloc(50_000, 9)];
  const got = await new Promise<{ echoes: string[]; error?: string }>((resolve) => {
    const ws = new WebSocket(`ws://${address}/ws/lib`, { handshakeTimeout: 4000 });
    const echoes: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ echoes, error: 'timeout' });
    }, 6000);
    ws.on('error', (e) => {
      clearTimeout(timer);
      resolve({ echoes, error: String(e) });
    });
    ws.on('open', () => ws.send(msgs[0]!));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      echoes.push(isBinary ? `bin:${data.toString('base64')}` : `txt:${data.toString()}`);
      if (echoes.length < msgs.length) ws.send(msgs[echoes.length]!);
      else ws.close(1000);
    });
    ws.on('close', () => {
      clearTimeout(timer);
      resolve({ echoes });
    });
  });
  process.stdout.write(JSON.stringify({ ...got, want: msgs.map((m) => (typeof m === 'string' ? `txt:${m}` : `bin:${m.toString('base64')}`)) }) + '\n');
} else {
  process.stderr.write(`unknown kind ${kind}\n`);
  process.exit(2);
}
