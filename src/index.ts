export { MeshError, ERRORS, type ErrorCode } from './core/errors.js';
export { parseConfigText, loadConfigFile } from './config/load.js';
export type { MeshConfig } from './config/schema.js';
export type { Registry, RegistrySnapshot, ServiceRecord, Endpoint } from './registry/registry.js';
