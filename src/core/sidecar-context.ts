// What every stage after the listener may use. Built once per sidecar in src/sidecar.ts;
// steering modules (explicit, forward proxy, CONNECT, transparent) receive it and hand their
// typed output to the shared route → cluster → endpoint path.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MeshConfig } from '../config/schema.js';
import type { Registry, Endpoint } from '../registry/registry.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { IdentityStore } from '../tls/identity-store.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Which mode brought a connection in; decided once by the steering stage. */
export type Steering = { readonly mode: 'explicit' } | { readonly mode: 'proxy' } | { readonly mode: 'transparent'; readonly originalDst: HostPort };

export type SteeringMode = Steering['mode'];

/** Where a destination (Host, URI authority, CONNECT authority, original dst) leads. */
export type Destination =
  /** virtual: the destination was the service's virtual IP (dns.enabled), not one of its endpoints. */
  { readonly kind: 'service'; readonly service: string; readonly virtual?: true } | { readonly kind: 'external'; readonly host: string; readonly port: number };

export interface EndpointLease {
  readonly endpoint: Endpoint;
  /** Report the outcome once; feeds least-request counts and outlier ejection. */
  release(ok: boolean): void;
}

export interface SidecarContext {
  readonly config: MeshConfig;
  readonly registry: Registry;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** One line per request or tunnel (sampled; errors always). */
  readonly accessLog: AccessLog;
  /**
   * Resolves a name or address to a mesh service (by name with optional port and domain
   * suffix, or by an endpoint address of a service) or an external destination.
   * Throws MeshError MESH_ERR_BAD_HOST for a malformed authority.
   */
  resolve(host: string, port: number | undefined): Destination;
  /**
   * Picks an endpoint of a service (load balancer, outlier state), skipping the addresses in
   * `exclude` (endpoints already tried); throws a MeshError.
   */
  pickEndpoint(service: string, exclude?: ReadonlySet<string>): EndpointLease;
  /** Throws MESH_ERR_EGRESS_DENIED unless the egress policy lets this external dst through. */
  checkEgress(host: string, port: number): void;
  /** True when host:port is one of this sidecar's own listeners (loop guard). */
  isOwnAddress(host: string, port: number): boolean;
  /**
   * Hands a downstream socket to the shared HTTP/1 server. Bytes already read must have
   * been put back with socket.unshift() first.
   */
  adoptHttp(socket: Socket, steering: Steering): void;
  /**
   * Hands a downstream socket whose next bytes are the HTTP/2 preface to the HTTP/2 path
   * (bytes already read put back with unshift first). `connectTarget`: the CONNECT authority
   * that carried it (proxy mode).
   */
  adoptHttp2(socket: Socket, steering: Steering, connectTarget?: HostPort): void;
  /** This sidecar's Via pseudonym (loop detection). */
  readonly via: string;
  /** This sidecar's mTLS identity (absent when no mtls files are configured). */
  readonly identity: IdentityStore | undefined;
  /** True once shutdown started. */
  readonly draining: boolean;
  /** True once the drain deadline passed and what was still open is being cut. */
  readonly drainCut: boolean;
}
