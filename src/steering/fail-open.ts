// transparent.failOpen: the sidecar owns the capture rules. They go in once every listener is
// listening and come out first thing on stop (and on process exit), so while no sidecar runs
// applications reach their destinations directly instead of hitting a closed port.
import type { Logger } from 'pino';
import type { MeshConfig } from '../config/schema.js';
import { MeshError } from '../core/errors.js';
import { redirectSpec, type RedirectSpec } from './rules/redirect-spec.js';
import { install, uninstall } from './rules/apply.js';
import type { BackendName } from './rules/redirect-spec.js';

export class FailOpenRules {
  private readonly spec: RedirectSpec;
  private backend: BackendName | undefined;
  private readonly onExit = (): void => this.remove();

  /** Validates the settings now, so a bad config fails before anything binds. */
  constructor(
    config: MeshConfig,
    private readonly log: Logger,
  ) {
    if (!config.transparent.enabled) throw new MeshError('MESH_ERR_CONFIG_INVALID', 'transparent.failOpen needs transparent.enabled: true (captured connections would not be recognised)');
    this.spec = redirectSpec(config);
    const uid = process.getuid?.();
    if (uid !== undefined && this.spec.proxyUid !== undefined && uid !== this.spec.proxyUid) {
      log.warn({ uid, proxyUid: this.spec.proxyUid }, 'the sidecar does not run as transparent.redirect.proxyUid: its own upstream connections will be captured and loop');
    }
  }

  install(): void {
    const r = install(this.spec);
    this.backend = r.backend;
    process.once('exit', this.onExit);
    this.log.info({ backend: r.backend, settings: r.hash }, 'capture rules installed (failOpen)');
  }

  /** Idempotent; never throws (logs instead): stopping must go on. */
  remove(): void {
    if (this.backend === undefined) return;
    const b = this.backend;
    this.backend = undefined;
    process.removeListener('exit', this.onExit);
    try {
      uninstall(b);
      this.log.info({ backend: b }, 'capture rules removed (failOpen)');
    } catch (e) {
      this.log.error({ err: e, backend: b }, 'could not remove capture rules');
    }
  }
}
