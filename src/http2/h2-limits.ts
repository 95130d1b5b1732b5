// Limits for downstream HTTP/2 connections. nghttp2 enforces most of them itself (session
// memory, header list pairs, SETTINGS entries, outstanding PINGs and flood detection of queued
// SETTINGS/PING acks, CONTINUATION frames per header block); the guard adds what it has no
// knob for: client resets per second (rapid reset) and refused header blocks per connection.
import type { ServerOptions } from 'node:http2';
import type { MeshConfig } from '../config/schema.js';

/** Streams one downstream connection may have open at once (announced in SETTINGS). */
export const MAX_CONCURRENT_STREAMS = 256;
/** Client RST_STREAMs per second on one connection before it is ended (CVE-2023-44487). */
export const MAX_CLIENT_RESETS_PER_SECOND = 200;
/** Header blocks refused for size on one connection before it is ended (HPACK bombs). */
export const MAX_REFUSED_HEADER_BLOCKS = 8;
/** nghttp2 session memory, MB: header tables, queued frames and stream state together. */
const MAX_SESSION_MEMORY_MB = 16;

export function h2ServerOptions(limits: MeshConfig['limits']): ServerOptions {
  return {
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    // Pseudo-headers count as pairs too.
    maxHeaderListPairs: limits.maxHeaderCount + 8,
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionRejectedStreams: 100,
    maxSessionInvalidFrames: 100,
    peerMaxConcurrentStreams: MAX_CONCURRENT_STREAMS,
    settings: {
      enablePush: false,
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      // The decoded header list, as HTTP/1's limits.maxHeaderBytes bounds a request head.
      maxHeaderListSize: limits.maxHeaderBytes,
    },
  };
}
