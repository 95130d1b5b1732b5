// Where a message body ends (RFC 9112 §6.3): decided from the head once, never guessed.
import type { MessageHead, RequestHead, ResponseHead } from './head.js';
import { hasConnectionToken } from './head.js';

export const enum Body {
  /** No body. */
  None,
  /** Exactly contentLength bytes. */
  Length,
  /** Chunked coding, passed through unchanged. */
  Chunked,
  /** Until the upstream closes (responses only); the connection cannot be reused. */
  UntilClose,
}

export function requestBody(head: RequestHead): Body {
  // CONNECT has no content: what follows the head is the tunnel.
  if (head.method === 'CONNECT') return Body.None;
  if (head.chunked) return Body.Chunked;
  return head.contentLength > 0 ? Body.Length : Body.None;
}

export function responseBody(head: ResponseHead, requestMethod: string): Body {
  const s = head.status;
  if (requestMethod === 'HEAD' || s < 200 || s === 204 || s === 304) return Body.None;
  if (requestMethod === 'CONNECT' && s < 300) return Body.None; // a tunnel follows
  if (head.chunked) return Body.Chunked;
  if (head.contentLength >= 0) return head.contentLength > 0 ? Body.Length : Body.None;
  return Body.UntilClose;
}

/** The request asks to switch protocols on this connection (Upgrade + Connection: upgrade). */
export function wantsUpgrade(head: RequestHead): boolean {
  return head.upgrade !== null && hasConnectionToken(head, 'upgrade');
}

/** Whether the downstream connection may carry another request after this exchange. */
export function requestKeepsAlive(head: RequestHead): boolean {
  return keepsAlive(head);
}

/** Whether the upstream connection may be reused after this response. */
export function responseKeepsAlive(head: ResponseHead): boolean {
  return keepsAlive(head);
}

/** HTTP/1.1 unless `close`; HTTP/1.0 only with `keep-alive` (the rule llhttp applies too). */
function keepsAlive(head: MessageHead): boolean {
  return head.versionMinor === 1 ? !hasConnectionToken(head, 'close') : hasConnectionToken(head, 'keep-alive');
}
