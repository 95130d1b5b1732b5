// transparent.redirect.proxyMark with mTLS: every connection A opens to B — pooled HTTP/1 over
// TLS, a CONNECT tunnel wrapped in mTLS — is a TLS session over a socket that carries the mark
// from its SYN on (the capture rules skip it), and still works: TLS reads arrive through the
// same reusable-buffer path as unmarked ones. ss shows the mark on A's connections to B.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startMtlsMesh, tunnelExchange } from '../helpers/mtls-mesh.js';
import { viaSidecar } from '../helpers/http.js';

const MARK = 0x539;
const skip = process.getuid?.() === 0 ? null : 'setting SO_MARK needs CAP_NET_ADMIN (run as root)';
if (skip !== null) process.stdout.write(`# mtls-mark: skipped: ${skip}\n`);

/** fwmark of each established TCP connection to port, as ss reports it. */
function marksTo(port: string): string[] {
  const out = execFileSync('ss', ['-tnHe', 'state', 'established', 'dport', '=', `:${port}`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => /fwmark:(0x[0-9a-f]+)/.exec(l)?.[1] ?? 'none');
}

test('A with proxyMark reaches B over mTLS on marked sockets: pooled HTTP/1 and a CONNECT tunnel', { skip: skip ?? false }, async () => {
  const m = await startMtlsMesh({ aExtra: { transparent: { redirect: { proxyMark: MARK } } } });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await viaSidecar(m.a.outbound, 'b', `/marked/${i}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json<{ name: string }>().name, 'b-app');
    }
    for (const s of m.app.seen) assert.equal(s.headers['x-dreammesh-caller'], 'a');
    const port = m.b.inbound.slice(m.b.inbound.lastIndexOf(':') + 1);
    const marks = marksTo(port);
    assert.ok(marks.length >= 1, 'the pooled connection to B is open');
    assert.deepEqual([...new Set(marks)], [`0x${MARK.toString(16)}`], `every connection to B carries the mark: ${marks.join(', ')}`);
    const reply = await tunnelExchange(m.a.outbound, 'b:80', 'GET /tunnel HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.match(reply, /b-app/);
  } finally {
    await m.close();
  }
});
