// Maps what undici and the socket layer report into DreamMesh error codes.
import { MeshError, type ErrorCode } from '../core/errors.js';
import { tlsUpstreamError } from '../tls/outbound-tls.js';

export function upstreamError(e: unknown, where: string): MeshError {
  if (e instanceof MeshError) return e;
  const tls = tlsUpstreamError(e, where);
  if (tls !== undefined) return tls;
  const err = e as { code?: string; message?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code ?? '';
  let mesh: ErrorCode;
  if (isNameNotResolved(code)) return new MeshError('MESH_ERR_UPSTREAM_UNRESOLVED', `${where}: ${code} ${err.message ?? ''}`.trim(), { cause: e });
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOENT': // unix socket path gone
      mesh = 'MESH_ERR_UPSTREAM_REFUSED';
      break;
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      mesh = 'MESH_ERR_UPSTREAM_CONNECT_TIMEOUT';
      break;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      mesh = 'MESH_ERR_UPSTREAM_TIMEOUT';
      break;
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_INFO':
      mesh = 'MESH_ERR_UPSTREAM_PROTOCOL';
      break;
    default:
      mesh = code.startsWith('HPE_') ? 'MESH_ERR_UPSTREAM_PROTOCOL' : 'MESH_ERR_UPSTREAM_RESET';
  }
  return new MeshError(mesh, `${where}: ${code ? `${code} ` : ''}${err.message ?? ''}`.trim(), { cause: e });
}

/** Failures that happened before the request could have reached the application. */
export function failedBeforeSending(e: MeshError): boolean {
  return e.code === 'MESH_ERR_UPSTREAM_REFUSED' || e.code === 'MESH_ERR_UPSTREAM_CONNECT_TIMEOUT' || e.code === 'MESH_ERR_UPSTREAM_UNRESOLVED';
}

/** getaddrinfo's ways of saying a name has no address (or the resolver could not be asked). */
export function isNameNotResolved(code: string | undefined): boolean {
  return code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_NODATA' || code === 'EAI_FAIL';
}
