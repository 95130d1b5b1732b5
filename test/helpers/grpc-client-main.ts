// A grpc-js client in its own process, for modes where grpc-js reads its settings from the
// environment at channel creation (grpc_proxy / http_proxy). Makes `n` unary calls over one
// channel to `target` and prints which server answered each, as JSON on stdout.
// Usage: node grpc-client-main.js <target> <n> [authority]
import { EchoClient, spreadOf, grpcError, grpc, type EchoClientT } from './grpc-mesh.js';

const [target, count, authority] = process.argv.slice(2);
const servers = 3;
const opts: grpc.ChannelOptions = authority !== undefined && authority !== '' ? { 'grpc.default_authority': authority } : {};
const c = new EchoClient(target!, grpc.credentials.createInsecure(), opts) as EchoClientT;
try {
  const seen = await spreadOf(c, Number(count), servers);
  process.stdout.write(JSON.stringify({ seen }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({ error: grpcError(e) }) + '\n');
} finally {
  c.close();
}
