// Draining with HTTP/2 downstreams: on SIGTERM the sidecar sends GOAWAY, a call already running
// (a gRPC server stream here) finishes, and the process exits once it did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSidecar } from '../helpers/sidecar.js';
import { startGrpcServers, echoClient, echoConfig, type Msg } from '../helpers/grpc-mesh.js';
import * as grpc from '@grpc/grpc-js';

test('SIGTERM: GOAWAY to HTTP/2 clients, the running call completes, then the process exits', async () => {
  const servers = await startGrpcServers(1);
  const mesh = await spawnSidecar(echoConfig(servers.addresses, { drainTimeoutMs: 10_000 }));
  const c = echoClient(mesh.outbound, 'echo');
  try {
    const slow = new Promise<Msg>((resolve, reject) => {
      c.unary({ text: 'slow', delayMs: 800 }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!)));
    });
    await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise<number | null>((r) => mesh.child.once('exit', (code) => r(code)));
    mesh.child.kill('SIGTERM');
    const r = await slow;
    assert.equal(r.text, 'slow', 'the call in flight when the drain began completed');
    assert.equal(await exited, 0);
  } finally {
    c.close();
    await mesh.stop();
    await servers.stop();
  }
});
