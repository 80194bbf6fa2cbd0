/** Builds Redis stores the way the gateway does, over the real catalog, each under its own key prefix. */
import {
  createRedisStore,
  type RedisClient,
  type RedisConnection,
  type RedisStore,
  type RedisStoreOptions,
} from '../../src/store/redis/index.js';
import {
  catalog,
  headroom,
  priorityClasses,
  staleAfterMs,
  temperatureMarginCelsius,
} from './store-fixtures.js';

let prefixes = 0;

/** A key prefix no other store of this test process uses. */
export function freshKeyPrefix(): string {
  prefixes++;
  return `vca-test-${process.pid}-${prefixes}`;
}

export function createTestRedisStore(
  redis: RedisClient | RedisConnection,
  overrides: Partial<RedisStoreOptions> = {},
): Promise<RedisStore> {
  return createRedisStore({
    catalog,
    headroom,
    temperatureMarginCelsius,
    staleAfterMs,
    requireTelemetry: true,
    priorityClasses,
    latencyPolicies: [],
    allowUnreportedRegions: false,
    redis,
    keyPrefix: freshKeyPrefix(),
    cluster: 'test-cluster',
    ...overrides,
  });
}
