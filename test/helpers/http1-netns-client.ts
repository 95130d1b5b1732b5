// Raw HTTP/1 and WebSocket exchanges run as a separate process (inside a network namespace, as
// the application's uid, so that capture rules apply to it):
//   node http1-netns-client.js raw ADDRESS '<steps JSON>' '<opts JSON>'
//   node http1-netns-client.js ws ADDRESS '<request head>' '<messages JSON>' MS
// Steps and messages carry bytes as latin1 strings ({"write": "..."}; {"opcode": 1, "payload": "..."}).
// Prints one JSON line: the RawResult (bodies base64) or the WsSession (payloads base64).
import { rawRequest, type Step } from './http1-wire.js';
import { rawWsSession } from './ws-frames.js';

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
} else {
  process.stderr.write(`unknown kind ${kind}\n`);
  process.exit(2);
}
