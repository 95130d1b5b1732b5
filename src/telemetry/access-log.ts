// One JSON line per request: mode, service, endpoint, status, duration, error code.
// Sampling keeps volume down; errors are always logged.
import type { Logger } from 'pino';
import type { AccessLogger } from '../core/logger.js';

export interface AccessRecord {
  readonly mode: string;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly service: string;
  readonly route?: string;
  readonly endpoint?: string;
  readonly status: number;
  readonly durationMs: number;
  readonly error?: string;
  readonly requestId?: string;
  readonly downstream?: string;
  readonly attempts?: number;
  /** Inbound: the verified caller (mTLS), or "unknown". */
  readonly caller?: string;
  readonly grpcStatus?: number;
}

export class AccessLog {
  private readonly logger: Logger | null;

  constructor(
    private readonly output: AccessLogger,
    private readonly sample: number,
  ) {
    this.logger = output.logger;
  }

  /** Whether a request with this outcome would be logged (lets callers skip building the record). */
  wants(status: number, failed: boolean): boolean {
    return this.logger !== null && (failed || status >= 500 || this.sample >= 1 || Math.random() < this.sample);
  }

  /** Logs the record if sampling keeps it. */
  record(r: AccessRecord): void {
    if (this.wants(r.status, r.error !== undefined)) this.write(r);
  }

  /** Logs a record the caller already sampled with wants(). */
  write(r: AccessRecord): void {
    this.logger?.info({ type: 'access', ...r });
  }

  flush(): void {
    this.logger?.flush();
  }

  /** Replaced by a reload: what is buffered is written, a file is closed. */
  close(): void {
    this.output.close();
  }
}
