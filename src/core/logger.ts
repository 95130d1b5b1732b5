// Process logs (pino, JSON to stderr) and the access log (JSON lines to stdout or a file).
import { pino, destination, stdTimeFunctions, type Logger } from 'pino';
import type { MeshConfig } from '../config/schema.js';

export function createLogger(level: MeshConfig['logLevel']): Logger {
  return pino({ level, base: { component: 'dreammesh' } }, destination({ fd: 2, sync: false }));
}

export function createAccessLogger(cfg: MeshConfig['accessLog']): Logger | null {
  if (!cfg.enabled) return null;
  const dest = cfg.path === undefined ? destination({ fd: 1, sync: false }) : destination({ dest: cfg.path, mkdir: true, sync: false });
  return pino({ base: null, messageKey: 'msg', timestamp: stdTimeFunctions.isoTime }, dest);
}
