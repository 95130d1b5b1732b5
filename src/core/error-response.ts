// The one place where a MeshError becomes an answer: an HTTP response with the
// x-dreammesh-error header and a short JSON body, or a raw HTTP response on a bare socket
// (CONNECT, parse errors), or a closed connection when no answer can be sent any more.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { MeshError } from './errors.js';

export const ERROR_HEADER = 'x-dreammesh-error';

export function errorBody(err: MeshError): string {
  return JSON.stringify({ error: err.code, message: err.message, ...(err.details ?? {}) }) + '\n';
}

/**
 * Answers with the error when the response head has not gone out yet; otherwise the only
 * honest signal left is to cut the connection so the client sees a truncated response.
 */
export function sendError(res: ServerResponse, err: MeshError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  if (res.destroyed || res.writableEnded) return;
  const body = errorBody(err);
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    [ERROR_HEADER]: err.code,
  });
  res.end(body);
}

/** A complete HTTP/1.1 error response written straight to a socket, then closed. */
export function writeRawError(socket: Duplex, err: MeshError): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = errorBody(err);
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `${ERROR_HEADER}: ${err.code}\r\nconnection: close\r\n\r\n${body}`,
  );
}
