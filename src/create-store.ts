/**
 * Builds the store the configuration names: embedded (in-process) or Redis (shared by instances, with
 * the event relay that carries session events between them).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { loadCatalog } from './config/load-catalog.js';
import type { VcaConfig } from './config/schema.js';
import { CatalogIndex } from './cost/catalog.js';
import type { EventRelay } from './sessions/events.js';
import type { StateStore } from './state/state-store.js';
import { createRedisStore } from './store/redis/index.js';
import { RedisEventRelay } from './store/redis/redis-event-relay.js';
import type { RedisAddress, RedisConnection } from './store/redis/redis-store.js';
import { createEmbeddedStore, storeOptions } from './vca.js';

export interface StoreSetup {
  store: StateStore;
  relay?: EventRelay;
}

/** `host:port` (an IPv6 host in brackets) as ioredis takes it. */
function address(hostPort: string): RedisAddress {
  const at = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(hostPort.slice(at + 1)) };
}

export function redisConnection(redis: VcaConfig['store']['redis']): RedisConnection {
  const password = redis.password === '' ? {} : { password: redis.password };
  if (redis.mode === 'sentinel') {
    return {
      sentinels: redis.sentinels.map(address),
      masterName: redis.sentinelMasterName,
      ...password,
      ...(redis.sentinelPassword === '' ? {} : { sentinelPassword: redis.sentinelPassword }),
    };
  }
  if (redis.mode === 'cluster') return { clusterNodes: redis.clusterNodes.map(address), ...password };
  return redis.url;
}

export async function createStore(config: Readonly<VcaConfig>, logger: Logger): Promise<StoreSetup> {
  const catalog = new CatalogIndex(loadCatalog(config));
  if (config.store.kind !== 'redis') return { store: createEmbeddedStore(config, catalog) };
  const { keyPrefix, cluster } = config.store.redis;
  const store = await createRedisStore({
    ...storeOptions(config, catalog),
    redis: redisConnection(config.store.redis),
    keyPrefix,
    cluster,
    logger: logger.child({ component: 'redis-store' }),
  });
  const relayLogger = logger.child({ component: 'event-relay' });
  const relay = await RedisEventRelay.start(
    store.client,
    `${keyPrefix}:{${cluster}}:events`,
    randomUUID(),
    (error) => relayLogger.warn({ err: error }, 'event relay error'),
  );
  return { store, relay };
}
