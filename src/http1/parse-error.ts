// A framing or syntax error found by the HTTP/1 codec. `code` names the rule that was broken;
// the engine maps it to a MeshError (request side: 400/414/431; response side: 502).

export type ParseErrorCode =
  | 'INVALID_METHOD'
  | 'INVALID_TARGET'
  | 'INVALID_VERSION'
  | 'INVALID_STATUS'
  | 'CR_EXPECTED'
  | 'LF_EXPECTED'
  | 'INVALID_HEADER_NAME'
  | 'INVALID_HEADER_VALUE'
  | 'OBS_FOLD'
  | 'INVALID_CONTENT_LENGTH'
  | 'DUPLICATE_CONTENT_LENGTH'
  | 'CONTENT_LENGTH_AND_TRANSFER_ENCODING'
  | 'INVALID_TRANSFER_ENCODING'
  | 'MISSING_HOST'
  | 'DUPLICATE_HOST'
  | 'HEADERS_TOO_LARGE'
  | 'TOO_MANY_HEADERS'
  | 'URI_TOO_LONG'
  | 'INVALID_CHUNK_SIZE'
  | 'INVALID_CHUNK_EXTENSION'
  | 'INVALID_CHUNK_DATA_END'
  | 'TRAILERS_TOO_LARGE'
  | 'DATA_AFTER_MESSAGE';

export class ParseError extends Error {
  constructor(
    readonly code: ParseErrorCode,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'ParseError';
  }
}
