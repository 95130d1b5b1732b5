// gRPC for the HTTP/2 tests: real @grpc/grpc-js servers and clients with a generic service
// (JSON messages through custom serializers, no .proto files). Every server answers with its
// own index, so a test can see which endpoint served a call.
import * as grpc from '@grpc/grpc-js';

export interface Msg {
  readonly text?: string;
  readonly server?: number;
  readonly n?: number;
  readonly delayMs?: number;
}

const ser = (v: Msg): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): Msg => JSON.parse(b.toString()) as Msg;

function method(path: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Msg, Msg> {
  return { path, requestStream, responseStream, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de };
}

export const ECHO_SERVICE = {
  unary: method('/mesh.Echo/Unary', false, false),
  serverStream: method('/mesh.Echo/ServerStream', false, true),
  clientStream: method('/mesh.Echo/ClientStream', true, false),
  bidi: method('/mesh.Echo/Bidi', true, true),
} satisfies grpc.ServiceDefinition;

/** Also served, under another name, to show unknown *methods* are the server's answer (12). */
export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
export type EchoClientT = InstanceType<typeof EchoClient> & {
  unary(m: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  serverStream(m: Msg, md?: grpc.Metadata, o?: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
  clientStream(md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientWritableStream<Msg>;
  bidi(md?: grpc.Metadata, o?: grpc.CallOptions): grpc.ClientDuplexStream<Msg, Msg>;
};

export interface GrpcServers {
  /** "127.0.0.1:port" of each server. */
  readonly addresses: string[];
  /** Calls each server received (all methods). */
  readonly calls: number[];
  /** Calls cancelled from the client side, as each server saw them. */
  readonly cancelled: number[];
  stop(): Promise<void>;
}

/** n servers on `host`, on ports basePort, basePort+1, ... (0: any free ports). */
export async function startGrpcServers(n: number, host = '127.0.0.1', basePort = 0): Promise<GrpcServers> {
  const servers: grpc.Server[] = [];
  const addresses: string[] = [];
  const calls = new Array<number>(n).fill(0);
  const cancelled = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    const server = new grpc.Server();
    const impl: grpc.UntypedServiceImplementation = {
      unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        calls[i]! += 1;
        const delay = call.request.delayMs ?? 0;
        if (delay === 0) return cb(null, { text: call.request.text ?? '', server: i });
        const t = setTimeout(() => cb(null, { text: call.request.text ?? '', server: i }), delay);
        call.on('cancelled', () => {
          cancelled[i]! += 1;
          clearTimeout(t);
        });
      },
      serverStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        calls[i]! += 1;
        for (let k = 0; k < (call.request.n ?? 3); k++) call.write({ n: k, server: i });
        call.end();
      },
      clientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        calls[i]! += 1;
        let count = 0;
        call.on('data', () => (count += 1));
        call.on('end', () => cb(null, { n: count, server: i }));
      },
      bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
        calls[i]! += 1;
        call.on('data', (m: Msg) => call.write({ text: m.text ?? '', server: i }));
        call.on('end', () => call.end());
      },
    };
    server.addService(ECHO_SERVICE, impl);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:${basePort === 0 ? 0 : basePort + i}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    servers.push(server);
    addresses.push(`${host}:${port}`);
  }
  return {
    addresses,
    calls,
    cancelled,
    stop: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))));
      for (const s of servers) s.forceShutdown();
    },
  };
}

/** A client whose channel goes to `target` (the sidecar) and names `authority` (the service). */
export function echoClient(target: string, authority: string, extra: grpc.ChannelOptions = {}): EchoClientT {
  return new EchoClient(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority, ...extra }) as EchoClientT;
}

export function unary(c: EchoClientT, m: Msg, deadlineMs = 10_000, md = new grpc.Metadata()): Promise<Msg> {
  return new Promise((resolve, reject) => {
    c.unary(m, md, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r!)));
  });
}

/** n sequential unary calls; returns how many each server answered. */
export async function spreadOf(c: EchoClientT, n: number, servers: number): Promise<number[]> {
  const seen = new Array<number>(servers).fill(0);
  for (let i = 0; i < n; i++) {
    const r = await unary(c, { text: `call ${i}` });
    seen[r.server!]! += 1;
  }
  return seen;
}

export function grpcError(e: unknown): { code: number; details: string; meshError: string | undefined } {
  const err = e as grpc.ServiceError;
  const v = err.metadata?.get('x-dreammesh-error')[0];
  return { code: err.code, details: err.details, meshError: typeof v === 'string' ? v : undefined };
}

/** A config with one service `echo` whose endpoints are the servers (h2c upstream). */
export function echoConfig(addresses: readonly string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { services: { echo: { endpoints: addresses.map((a) => ({ address: a, protocol: 'http2' })) } }, ...extra };
}

export { grpc };
