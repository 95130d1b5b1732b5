// A scripted TCP client for e2e tests, run as the application's uid inside a namespace:
//   node tcp-client.js HOST PORT '[{"send":"PING\r\n"},{"waitMs":300,"send":"x"}]' TOTAL_MS
// Prints what it received as one JSON string.
import { connect } from 'node:net';

const [host, port, stepsJson, totalMs] = process.argv.slice(2);
const steps = JSON.parse(stepsJson ?? '[]') as { send?: string; waitMs?: number }[];
let got = '';
const s = connect({ host: host!, port: Number(port) });
const done = (): void => {
  s.destroy();
  process.stdout.write(JSON.stringify(got) + '\n');
  process.exit(0);
};
setTimeout(done, Number(totalMs ?? 2000));
s.on('data', (c: Buffer) => (got += c.toString('latin1')));
s.on('end', done);
s.on('error', (e) => {
  got += `[error ${(e as NodeJS.ErrnoException).code}]`;
  done();
});
s.on('connect', () => {
  void (async () => {
    for (const st of steps) {
      if (st.waitMs) await new Promise((r) => setTimeout(r, st.waitMs));
      if (st.send !== undefined && !s.destroyed) s.write(Buffer.from(st.send, 'latin1'));
    }
  })();
});
