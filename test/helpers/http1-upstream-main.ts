// The scripted HTTP/1 upstream as a process, for network namespaces:
//   node http1-upstream-main.js PORT [NAME]
// Listens on [::]:PORT (dual-stack); prints "ready" once listening. Its recorder is at /__seen.
import { startScriptedUpstream } from './http1-upstream.js';

const [port, name] = process.argv.slice(2);
await startScriptedUpstream(name ?? `net${port}`, { host: '::', port: Number(port) });
process.stdout.write('ready\n');
