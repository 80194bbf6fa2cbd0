/** Public surface of configuration: loading, validation and the schema types. */
export { buildCatalog, loadCatalog } from './load-catalog.js';
export { ConfigError, defaultConfigDir, environmentVariables, loadConfig } from './load-config.js';
export type { AutoscalerConfig, PlacementConfig, VcaConfig } from './schema.js';
export { ConfigSchema } from './schema.js';
