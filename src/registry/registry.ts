// The Registry interface: where service instances come from. Routing only ever sees
// snapshots, so file, etcd and memory backends plug in without touching it. Every backend
// runs the same conformance suite (test/registry-conformance.ts).

export interface Endpoint {
  /** "host:port" as written; the identity of the endpoint within a service. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  /** A sidecar's inbound listener with mTLS on: reached over mTLS (absent = plaintext). */
  readonly mtls?: boolean;
  /** Upstream protocol for HTTP/2 downstream requests (absent = auto). */
  readonly protocol?: EndpointProtocol;
}

export type EndpointProtocol = 'http1' | 'http2' | 'auto';

export interface ServiceRecord {
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
}

export interface RegistrySnapshot {
  /** Increases with every accepted change. */
  readonly version: number;
  readonly services: ReadonlyMap<string, ServiceRecord>;
}

export interface RegistryHealth {
  readonly backend: string;
  /** True while the backend is in contact with its source of truth. */
  readonly connected: boolean;
  /** Epoch ms of the last successful sync (0 = never). */
  readonly lastSyncMs: number;
  /** Why the backend is unhealthy or what it fell back to, for /ready and logs. */
  readonly message?: string;
  /** Records rejected (malformed) since start. */
  readonly rejected: number;
}

export type SnapshotListener = (snapshot: RegistrySnapshot) => void;

export interface Registry {
  /** Loads the first snapshot; rejects only when there is nothing at all to serve from. */
  start(): Promise<void>;
  snapshot(): RegistrySnapshot;
  /** Called after each change, in order; returns an unsubscribe function. */
  watch(listener: SnapshotListener): () => void;
  health(): RegistryHealth;
  /**
   * Announces this sidecar's own instance (etcd: under a lease kept alive until deregister or
   * close). Resolves after the first attempt; keeps retrying in the background. Optional:
   * backends that cannot announce leave it out.
   */
  register?(self: SelfRegistration): Promise<void>;
  /** Withdraws the instance announced by register (graceful shutdown); never throws. */
  deregister?(): Promise<void>;
  close(): Promise<void>;
}

export interface SelfRegistration {
  readonly service: string;
  /** Instance id within the service (default: the address). */
  readonly id?: string;
  readonly address: string;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  /** This sidecar accepts mTLS on its inbound listener (peers then use it). */
  readonly mtls?: boolean;
}

/** A registry that also accepts writes (etcd; memory in tests). */
export interface WritableRegistry extends Registry {
  put(service: string, endpoint: Omit<Endpoint, 'host' | 'port'>): Promise<void>;
  remove(service: string, address: string): Promise<void>;
}

export const EMPTY_SNAPSHOT: RegistrySnapshot = Object.freeze({ version: 0, services: new Map() });
