/** Builds the store the configuration names. The Redis store arrives with distributed mode. */
import type { Logger } from 'pino';
import { loadCatalog } from '../config/load-catalog.js';
import type { VcaConfig } from '../config/schema.js';
import { CatalogIndex } from '../cost/catalog.js';
import { createEmbeddedStore } from '../vca.js';
import type { ClusterStore } from './store.js';

export async function createStore(config: Readonly<VcaConfig>, _logger: Logger): Promise<ClusterStore> {
  if (config.store.kind === 'redis') {
    throw new Error('store.kind "redis" is not available in this build yet; use "embedded"');
  }
  return createEmbeddedStore(config, new CatalogIndex(loadCatalog(config)));
}
