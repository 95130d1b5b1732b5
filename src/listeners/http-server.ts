// The node:http server used by outbound and inbound listeners. llhttp does the framing in
// strict mode (no lenient flags): CL+TE, bad Content-Length, non-final chunked, obs-fold and
// bare LF are rejected before any byte reaches an upstream. Parse errors become answers here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { MeshConfig } from '../config/schema.js';
import { MeshError } from '../core/errors.js';
import { writeRawError } from '../core/error-response.js';

export function createHttpServer(
  config: MeshConfig,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  onBadRequest: (code: string) => void,
): Server {
  const server = createServer(
    {
      maxHeaderSize: config.limits.maxHeaderBytes,
      insecureHTTPParser: false,
      keepAliveTimeout: config.timeouts.idleMs,
      headersTimeout: 30_000,
      requestTimeout: 0, // long uploads and streams are governed by the idle timeout instead
      noDelay: true,
    },
    onRequest,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    onBadRequest(err.code ?? 'unknown');
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      writeRawError(socket, new MeshError('MESH_ERR_HEADERS_TOO_LARGE', `the request header section exceeds ${config.limits.maxHeaderBytes} bytes`));
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.destroy();
    } else {
      writeRawError(socket, new MeshError('MESH_ERR_BAD_REQUEST', `malformed request: ${err.code ?? err.message}`));
    }
  });
  return server;
}
