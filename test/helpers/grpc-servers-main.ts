// Three grpc-js echo servers in their own process (e.g. inside a network namespace):
// node grpc-servers-main.js <host> <basePort>. Prints "ready" once all listen.
import { startGrpcServers } from './grpc-mesh.js';

const [host, base] = process.argv.slice(2);
await startGrpcServers(3, host ?? '127.0.0.1', Number(base ?? 50051));
process.stdout.write('ready\n');
