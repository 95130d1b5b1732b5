// Transparent mode: the original destination of a redirected socket (SO_ORIGINAL_DST).
// Placeholder until the native addon lands (issue 4): reports "not redirected".
import type { Socket } from 'node:net';
import type { HostPort } from '../core/sidecar-context.js';

/** True when the native addon is available and transparent mode can work. */
export function originalDstAvailable(): boolean {
  return false;
}

/** The original destination, or null when the socket was not redirected. */
export function originalDestination(_socket: Socket): HostPort | null {
  return null;
}
