// This sidecar's own instance record, held under an etcd lease that the etcd3 client keeps
// alive (a keepalive every TTL/3). If the lease is lost (etcd away longer than the TTL, or the
// lease revoked by someone else), a new lease is granted and the record put again, with
// backoff, until stop(). stop() revokes the lease, so the record vanishes at once; a crashed
// sidecar's record vanishes when its TTL runs out.
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from 'pino';

const MIN_BACKOFF_MS = 100;

export class EtcdRegistration {
  private lease: Lease | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** True while the record is known to be in etcd under a live lease. */
  registered = false;

  constructor(
    private readonly client: Etcd3,
    readonly key: string,
    private readonly value: string,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
    private readonly maxBackoffMs: number,
  ) {}

  /** Resolves after the first attempt, successful or not; retries continue in the background. */
  start(): Promise<void> {
    return new Promise((firstAttempt) => {
      this.loop = this.run(firstAttempt);
    });
  }

  private async run(firstAttempt: () => void): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.stopped) {
      const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
      let lostReason = 'stopped';
      const lost = new Promise<void>((resolve) => {
        lease.on('lost', (err: Error) => {
          lostReason = err.message;
          resolve();
        });
        this.wake = resolve;
      });
      try {
        await lease.put(this.key).value(this.value);
        if (this.stopped) {
          await lease.revoke().catch(() => {});
          break;
        }
        this.lease = lease;
        this.registered = true;
        backoff = MIN_BACKOFF_MS;
        this.log.info({ key: this.key, ttlSeconds: this.ttlSeconds, lease: await lease.grant() }, 'registered this instance in etcd');
        firstAttempt();
        await lost;
        this.registered = false;
        this.lease = undefined;
        if (this.stopped) break;
        this.log.warn({ key: this.key, reason: lostReason }, 'etcd registration lease lost; granting a new one');
      } catch (e) {
        this.registered = false;
        lease.release();
        firstAttempt();
        this.log.warn({ key: this.key, reason: (e as Error).message.split('\n')[0] }, 'cannot register this instance in etcd yet; retrying');
      }
      if (this.stopped) break;
      await new Promise<void>((r) => {
        const t = setTimeout(r, backoff * (0.75 + Math.random() * 0.5));
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      backoff = Math.min(backoff * 2, this.maxBackoffMs);
    }
  }

  /** Revokes the lease (bounded by the client's call deadline); never throws. */
  async stop(): Promise<void> {
    if (this.stopped) return this.loop;
    this.stopped = true;
    const lease = this.lease;
    this.lease = undefined;
    if (lease !== undefined) {
      try {
        await lease.revoke();
        this.log.info({ key: this.key }, 'withdrew this instance from etcd');
      } catch (e) {
        lease.release();
        this.log.warn({ key: this.key, reason: (e as Error).message.split('\n')[0] }, 'could not revoke the etcd lease; the instance expires with its TTL');
      }
    }
    this.registered = false;
    this.wake?.();
    await this.loop;
  }
}
