// Process logs (pino, JSON to stderr) and the access log (JSON lines to stdout or a file).
import { pino, destination, stdTimeFunctions, type Logger } from 'pino';
import type { MeshConfig } from '../config/schema.js';

export function createLogger(level: MeshConfig['logLevel']): Logger {
  return pino({ level, base: { component: 'dreammesh' } }, destination({ fd: 2, sync: false }));
}

export interface AccessLogger {
  readonly logger: Logger | null;
  /** Flushes and closes a file destination (a reload that moves the access log); stdout stays open. */
  close(): void;
}

export function createAccessLogger(cfg: MeshConfig['accessLog']): AccessLogger {
  if (!cfg.enabled) return { logger: null, close: () => {} };
  if (cfg.path === undefined) {
    const logger = pino({ base: null, messageKey: 'msg', timestamp: stdTimeFunctions.isoTime }, destination({ fd: 1, sync: false }));
    return { logger, close: () => logger.flush() };
  }
  const dest = destination({ dest: cfg.path, mkdir: true, sync: false });
  const logger = pino({ base: null, messageKey: 'msg', timestamp: stdTimeFunctions.isoTime }, dest);
  return { logger, close: () => dest.end() };
}
