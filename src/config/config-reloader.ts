// Re-reads the config file on SIGHUP (and on change, with watchConfig: true) and puts it in
// force through the same parse + validate + preflight path as `run`. A file that fails any of
// it changes nothing: the running config stays, the reason is logged, and
// dreammesh_config_reload_failures_total{source="config"} counts it.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Sidecar } from '../sidecar.js';
import { loadConfigFile } from './load.js';
import { preflight } from './preflight.js';
import { isMeshError } from '../core/errors.js';

/** Editors write a file in several steps; one reload after the last of them. */
const WATCH_SETTLE_MS = 200;

export class ConfigReloader {
  private running: Promise<void> | undefined;
  private again = false;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sidecar: Sidecar,
    private readonly file: string,
  ) {}

  /** One reload at a time; a request during one runs once more after it. */
  request(trigger: 'SIGHUP' | 'watch'): void {
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.reload(trigger).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.request(trigger);
      }
    });
  }

  /** Watches the directory, so that a file replaced by rename (editors, ConfigMaps) is seen. */
  watch(): void {
    const name = basename(this.file);
    try {
      this.watcher = watch(dirname(this.file), (_event, changed) => {
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.request('watch'), WATCH_SETTLE_MS);
      });
      this.watcher.on('error', (e) => this.sidecar.log.warn({ err: e, path: this.file }, 'config watch failed; SIGHUP still reloads'));
    } catch (e) {
      this.sidecar.log.warn({ err: e, path: this.file }, 'cannot watch the config file; SIGHUP still reloads');
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  private async reload(trigger: string): Promise<void> {
    const log = this.sidecar.log;
    try {
      const config = await loadConfigFile(this.file);
      const { problems } = await preflight(config);
      if (problems.length > 0) throw new Error(problems.map((p) => `${p.code}: ${p.message}`).join('; '));
      await this.sidecar.reload(config);
    } catch (e) {
      if (this.sidecar.context.draining) return;
      this.sidecar.metrics.configReloadFailures.inc({ source: 'config' });
      const reason = isMeshError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
      log.error({ trigger, path: this.file, reason }, 'config reload rejected; the running config stays in force');
    }
  }
}
