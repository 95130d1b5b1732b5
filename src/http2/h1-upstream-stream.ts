// An HTTP/2 request forwarded to an endpoint that speaks only HTTP/1.1 (protocol: http1): a
// node:http request wrapped to look like an HTTP/2 client stream to H2Call (the same events:
// response with :status, data, trailers, end, close with a code), so one call path serves both.
// A connect failure reports REFUSED_STREAM: nothing reached the application, the call may go
// elsewhere.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { request, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { constants, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Endpoint } from '../registry/registry.js';
import { failedBeforeSending, upstreamError } from '../upstream/upstream-error.js';
import { isHopByHop } from '../telemetry/request-headers.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = constants;

export class Http1UpstreamStream extends EventEmitter {
  destroyed = false;
  rstCode: number | undefined = undefined;
  private readonly req: ClientRequest;
  private res: IncomingMessage | null = null;

  /** `dial`: a connection of its own (an mTLS endpoint: one TLS connection per request, no agent). */
  constructor(endpoint: Endpoint, headers: OutgoingHttpHeaders, agent: Agent, endStream: boolean, dial?: () => Socket) {
    super();
    const out: OutgoingHttpHeaders = {};
    for (const name in headers) {
      if (name.startsWith(':') || isHopByHop(name, null)) continue;
      out[name] = headers[name];
    }
    out.host = String(headers[':authority']);
    const method = String(headers[':method']);
    // The inbound app may be a unix socket ("unix:/path", inbound-router.ts).
    const where = endpoint.address.startsWith('unix:') ? { socketPath: endpoint.address.slice(5) } : { host: endpoint.host, port: endpoint.port };
    const via = dial === undefined ? { agent } : { createConnection: dial };
    this.req = request({ ...where, method, path: String(headers[':path']), headers: out, ...via, setHost: false });
    this.req.on('response', (res) => this.onResponse(res));
    this.req.on('error', (e) => {
      this.emit('error', e);
      this.finish(this.res === null && failedBeforeSending(upstreamError(e, endpoint.address)) ? NGHTTP2_REFUSED_STREAM : NGHTTP2_INTERNAL_ERROR);
    });
    this.req.on('drain', () => this.emit('drain'));
    if (endStream) this.req.end();
  }

  private onResponse(res: IncomingMessage): void {
    this.res = res;
    const h: IncomingHttpHeaders = { ':status': String(res.statusCode ?? 502) };
    for (const name in res.headers) if (!isHopByHop(name, null) && name !== 'host') h[name] = res.headers[name];
    this.emit('response', h, 0);
    res.on('data', (c: Buffer) => this.emit('data', c));
    res.on('end', () => {
      if (Object.keys(res.trailers).length > 0) this.emit('trailers', res.trailers);
      this.rstCode = NGHTTP2_NO_ERROR;
      this.emit('end');
      this.finish(NGHTTP2_NO_ERROR);
    });
    res.on('aborted', () => this.finish(NGHTTP2_INTERNAL_ERROR));
    res.on('error', () => this.finish(NGHTTP2_INTERNAL_ERROR));
  }

  write(chunk: Buffer): boolean {
    return this.req.write(chunk);
  }

  end(): void {
    this.req.end();
  }

  pause(): void {
    this.res?.pause();
  }

  resume(): void {
    this.res?.resume();
  }

  close(code: number): void {
    this.req.destroy();
    this.finish(code);
  }

  private finish(code: number): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.rstCode = code;
    if (code !== NGHTTP2_NO_ERROR) this.req.destroy();
    setImmediate(() => this.emit('close'));
  }
}
