// After a bad-input or abuse case: the sidecar process is alive, an HTTP/2 GET to service
// `svc` (whose endpoints answer "ok") still works, and HTTP/1 on the same port is served too
// (404 JSON for an unknown service).
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import type { SpawnedSidecar } from './sidecar.js';
import { rawRequest } from './http1-wire.js';

export async function assertServesBoth(mesh: SpawnedSidecar, why: string): Promise<void> {
  const c = mesh.child;
  assert.ok(c.exitCode === null && c.signalCode === null, `${why}: the sidecar died:\n${mesh.stderr().slice(-2000)}`);
  const body = await new Promise<string>((resolve, reject) => {
    const s = connect(`http://${mesh.outbound}`);
    s.on('error', reject);
    const r = s.request({ ':path': '/', ':authority': 'svc' });
    let b = '';
    r.on('data', (d: Buffer) => (b += d.toString()));
    r.on('end', () => {
      s.close();
      resolve(b);
    });
    r.on('error', reject);
  });
  assert.equal(body, 'ok', `${why}: an HTTP/2 request still works`);
  const h1 = await rawRequest(mesh.outbound, [{ write: 'GET / HTTP/1.1\r\nHost: nosuch\r\nConnection: close\r\n\r\n' }], { ms: 3000 });
  assert.match(h1.data.toString('latin1'), /^HTTP\/1\.1 404 /, `${why}: HTTP/1 still works`);
}
