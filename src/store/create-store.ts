/** Builds the store the configuration names: embedded (in-process) or Redis (shared by instances). */
import type { Logger } from 'pino';
import { loadCatalog } from '../config/load-catalog.js';
import type { VcaConfig } from '../config/schema.js';
import { CatalogIndex } from '../cost/catalog.js';
import { createEmbeddedStore } from '../vca.js';
import { createRedisStore } from './redis/index.js';
import type { ClusterStore } from './store.js';

export async function createStore(config: Readonly<VcaConfig>, logger: Logger): Promise<ClusterStore> {
  const catalog = new CatalogIndex(loadCatalog(config));
  if (config.store.kind === 'redis') {
    // The same placement and telemetry options createEmbeddedStore (src/vca.ts) reads from config.
    return createRedisStore({
      catalog,
      headroom: config.placement.headroom,
      temperatureMarginCelsius: config.placement.temperatureMarginCelsius,
      staleAfterMs: config.telemetry.reportIntervalSeconds * config.telemetry.staleAfterIntervals * 1000,
      requireTelemetry: config.placement.requireTelemetry,
      priorityClasses: config.queue.priorityClasses,
      redis: config.store.redis.url,
      keyPrefix: config.store.redis.keyPrefix,
      cluster: config.store.redis.cluster,
      logger: logger.child({ component: 'redis-store' }),
    });
  }
  return createEmbeddedStore(config, catalog);
}
