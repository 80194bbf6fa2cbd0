/** The shared-rule regressions on the embedded store and on a real Redis. */
import { afterAll, beforeAll } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { createEmbeddedStore } from './embedded-factory.js';
import { createTestRedisStore } from './redis-factory.js';
import { describeStoreRegressions } from './store-regressions.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describeStoreRegressions('embedded', async () => createEmbeddedStore());
describeStoreRegressions('redis', () => createTestRedisStore(server.url));
