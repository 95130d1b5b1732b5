// File backend: a YAML file with a `services:` map (the config's shape), hot-reloaded when it
// changes. A broken edit keeps the last good snapshot, is logged with the reason, and counted
// in dreammesh_config_reload_failures_total{source="registry-file"}.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { parse, YAMLParseError } from 'yaml';
import { BaseRegistry } from './base-registry.js';
import type { RegistryHealth, ServiceRecord } from './registry.js';
import { toServiceRecord } from './normalize.js';
import { describeAjvErrors, validateService } from '../config/load.js';
import type { ServiceConfig } from '../config/schema.js';
import { MeshError } from '../core/errors.js';

const DEBOUNCE_MS = 50;

export class FileRegistry extends BaseRegistry {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private message: string | undefined;
  private lastText = '';

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    private readonly onReloadFailure: () => void,
  ) {
    super();
  }

  async start(): Promise<void> {
    const text = await readFile(this.path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new MeshError('MESH_ERR_CONFIG_INVALID', `registry.file: cannot read ${this.path}: ${e.code ?? e.message}`);
    });
    this.publish(this.parse(text));
    this.lastText = text;
    // Watch the directory, not the file: editors replace files by rename, which ends a file watch.
    this.watcher = watch(dirname(this.path), (_event, name) => {
      if (name !== null && name !== basename(this.path)) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload(), DEBOUNCE_MS);
    });
    this.watcher.on('error', (e) => this.log.warn({ err: e, path: this.path }, 'registry file watch failed; keeping the last snapshot'));
  }

  /** Re-reads the file; a bad file leaves the current snapshot in force. Never throws. */
  async reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      return this.reject(`cannot read ${this.path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (text === this.lastText) return;
    try {
      const services = this.parse(text);
      this.lastText = text;
      this.message = undefined;
      this.publish(services);
      this.log.info({ path: this.path, services: services.size }, 'registry file reloaded');
    } catch (e) {
      this.lastText = text;
      this.reject((e as Error).message);
    }
  }

  private reject(why: string): void {
    this.message = `last reload rejected: ${why}`;
    this.rejected += 1;
    this.onReloadFailure();
    this.log.error({ path: this.path, reason: why }, 'registry file rejected; keeping the last good snapshot');
  }

  private parse(text: string): Map<string, ServiceRecord> {
    return parseServicesFile(text, this.path);
  }

  health(): RegistryHealth {
    return { backend: 'file', connected: true, lastSyncMs: this.lastSyncMs, rejected: this.rejected, ...(this.message ? { message: this.message } : {}) };
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}

/**
 * Reads the services: map of a registry file. Only endpoints are taken from it: policy (routes,
 * lb, timeouts, retries) lives in the config, so a file that sets it is refused rather than
 * silently ignored. Also used by `dreammesh validate`.
 */
export function parseServicesFile(text: string, path: string): Map<string, ServiceRecord> {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` (line ${e.linePos[0].line})` : '';
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `${path}: not valid YAML${where}`);
  }
  const services = (doc as { services?: unknown } | null)?.services;
  const extra = doc !== null && typeof doc === 'object' ? Object.keys(doc).filter((k) => k !== 'services') : [];
  if (extra.length > 0) throw new MeshError('MESH_ERR_CONFIG_INVALID', `${path}: ${extra[0]}: unknown key (expected only services:)`);
  if (services === undefined || services === null || typeof services !== 'object' || Array.isArray(services)) {
    throw new MeshError('MESH_ERR_CONFIG_INVALID', `${path}: expected a top-level services: map`);
  }
  const out = new Map<string, ServiceRecord>();
  for (const [name, raw] of Object.entries(services as Record<string, unknown>)) {
    if (!validateService(raw)) throw new MeshError('MESH_ERR_CONFIG_INVALID', `${path}: ${describeAjvErrors(validateService.errors, `/services/${name}`)}`);
    const policy = Object.keys(raw as object).find((k) => k !== 'endpoints');
    if (policy !== undefined) {
      throw new MeshError('MESH_ERR_CONFIG_INVALID', `${path}: services.${name}.${policy}: a registry file carries endpoints only; ${policy} goes in the config's services.${name}`);
    }
    const rec = toServiceRecord(name, (raw as ServiceConfig).endpoints);
    if (rec.endpoints.length !== (raw as ServiceConfig).endpoints.length) {
      throw new MeshError('MESH_ERR_CONFIG_INVALID', `${path}: services.${name}.endpoints: an address is not host:port (or is repeated)`);
    }
    out.set(name, rec);
  }
  return out;
}
