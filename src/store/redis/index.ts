/** The Redis store: StateStore over ioredis and Lua scripts, for several gateway instances. */
export { type RedisKeys, redisKeys } from './keys.js';
export {
  createRedisStore,
  type RedisAddress,
  type RedisClient,
  type RedisConnection,
  RedisStore,
  type RedisStoreOptions,
} from './redis-store.js';
