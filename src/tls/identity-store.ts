// The identity in force, kept fresh: the files are re-read when they change (a directory
// watch, plus a poll, since events can be missed on volume mounts and with atomic renames)
// and a new identity replaces the old one only once it checks out whole. New connections take
// the new TLS context; established ones finish on theirs. A missing, half-written or
// mismatched file keeps the last good identity: logged and counted, never a crash.
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { MtlsConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { buildIdentity, readIdentityFiles, type IdentityFiles, type IdentityBytes, type WorkloadIdentity } from './workload-identity.js';

/** Several files change in quick succession during a rotation: wait for them to settle. */
const DEBOUNCE_MS = 50;

export function identityFiles(cfg: MtlsConfig): IdentityFiles | undefined {
  if (cfg.certFile === undefined || cfg.keyFile === undefined || cfg.caFile === undefined) return undefined;
  return { certFile: cfg.certFile, keyFile: cfg.keyFile, caFile: cfg.caFile };
}

export class IdentityStore {
  private current: WorkloadIdentity;
  private lastTried: IdentityBytes;
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** Bumped at every rotation (pools use it to tell old connections from new). */
  generation = 1;

  constructor(
    private readonly files: IdentityFiles,
    private readonly cfg: MtlsConfig,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    // At start a bad identity is fatal: there is no last good one to keep.
    this.current = buildIdentity(readIdentityFiles(files), cfg.trustDomain);
    this.lastTried = this.current.bytes;
    metrics.mtlsCertExpiry.set(this.secondsToExpiry());
    // Collected at scrape time so the gauge counts down between rotations.
    const gauge = metrics.mtlsCertExpiry as unknown as { collect?: () => void };
    gauge.collect = () => metrics.mtlsCertExpiry.set(this.secondsToExpiry());
  }

  static fromConfig(cfg: MtlsConfig, metrics: Metrics, log: Logger): IdentityStore | undefined {
    const files = identityFiles(cfg);
    if (files === undefined) {
      if (cfg.mode !== 'off') throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.mode is ${cfg.mode}: mtls.certFile, mtls.keyFile and mtls.caFile are required`);
      return undefined;
    }
    return new IdentityStore(files, cfg, metrics, log);
  }

  get identity(): WorkloadIdentity {
    return this.current;
  }

  secondsToExpiry(now = Date.now()): number {
    return Math.round((this.current.notAfter.getTime() - now) / 1000);
  }

  /** False once the certificate expires within the margin (or has expired, or is not yet valid). */
  usable(now = Date.now()): boolean {
    return this.current.notBefore.getTime() <= now && this.current.notAfter.getTime() - now > this.cfg.expiryMarginSeconds * 1000;
  }

  start(): void {
    const dirs = new Set([dirname(this.files.certFile), dirname(this.files.keyFile), dirname(this.files.caFile)]);
    for (const d of dirs) {
      try {
        const w = watch(d, { persistent: false }, () => this.soon());
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch (e) {
        this.log.warn({ dir: d, err: (e as Error).message }, 'mtls: cannot watch the identity directory; polling only');
      }
    }
    this.poll = setInterval(() => this.check(), this.cfg.reloadIntervalMs);
    this.poll.unref();
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.poll !== undefined) clearInterval(this.poll);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
  }

  private soon(): void {
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.check();
    }, DEBOUNCE_MS);
    this.debounce.unref();
  }

  /** Re-reads the files; a change that checks out is put in force. Returns true when it rotated. */
  check(): boolean {
    let bytes: IdentityBytes;
    try {
      bytes = readIdentityFiles(this.files);
    } catch (e) {
      // A file briefly absent during a rename: the next event or poll tells.
      this.log.debug({ err: (e as Error).message }, 'mtls: identity files not readable right now');
      return false;
    }
    if (same(bytes, this.lastTried)) return false;
    this.lastTried = bytes;
    try {
      const next = buildIdentity(bytes, this.cfg.trustDomain);
      if (next.spiffeId !== this.current.spiffeId) this.log.warn({ from: this.current.spiffeId, to: next.spiffeId }, 'mtls: the rotated certificate names another SPIFFE ID');
      this.current = next;
      this.generation += 1;
      this.metrics.mtlsIdentityReloads.inc({ outcome: 'rotated' });
      this.metrics.mtlsCertExpiry.set(this.secondsToExpiry());
      this.log.info({ spiffeId: next.spiffeId, serial: next.leaf.serialNumber, notAfter: next.notAfter.toISOString() }, 'mtls: identity rotated');
      return true;
    } catch (e) {
      const err = toMeshError(e, 'MESH_ERR_IDENTITY_INVALID');
      this.metrics.mtlsIdentityReloads.inc({ outcome: 'rejected' });
      this.metrics.mtlsIdentityReloadFailures.inc();
      this.log.warn({ code: err.code, reason: err.message, keeping: this.current.leaf.serialNumber }, 'mtls: new identity files rejected; the last good identity stays in force');
      return false;
    }
  }
}

function same(a: IdentityBytes, b: IdentityBytes): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key) && a.ca.equals(b.ca);
}
