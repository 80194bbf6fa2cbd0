/**
 * The Redis store when Redis goes away: calls fail fast with VCA_ERR_STORE_UNAVAILABLE (no offline
 * queue, no hanging request), and the store answers again on its own once Redis is back.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster } from '../../kit/redis-cluster.js';
import { startRedisSentinel } from '../../kit/redis-sentinel.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { VcaError } from '../../src/errors.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import { createTestRedisStore } from './redis-factory.js';
import { createOptions, readyNode, sessionSpec } from './store-fixtures.js';

async function rejection(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  return { error, ms: performance.now() - started };
}

describe('redis test harness', () => {
  it('fails, rather than skips, when redis-server is not installed', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const install = /redis-server is not installed: run `apt-get install redis-server redis-tools`/;
      await expect(startRedisServer()).rejects.toThrow(install);
      await expect(startRedisSentinel()).rejects.toThrow(install);
      await expect(startRedisCluster()).rejects.toThrow(install);
    } finally {
      process.env.PATH = path;
    }
  });

  it('fails, rather than skips, when only redis-cli (which creates the Cluster) is missing', async () => {
    const path = process.env.PATH;
    const onlyServer = mkdtempSync(join(tmpdir(), 'vca-path-'));
    symlinkSync(
      execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim(),
      join(onlyServer, 'redis-server'),
    );
    process.env.PATH = onlyServer;
    try {
      await expect(startRedisCluster()).rejects.toThrow(
        /redis-cli is not installed: run `apt-get install redis-server redis-tools`/,
      );
    } finally {
      process.env.PATH = path;
      rmSync(onlyServer, { recursive: true, force: true });
    }
  });
});

describe('redis store: Redis outage', () => {
  let server: RedisServer;
  let store: RedisStore;

  beforeAll(async () => {
    server = await startRedisServer();
    store = await createTestRedisStore(server.url);
  });

  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('fails calls quickly with VCA_ERR_STORE_UNAVAILABLE while Redis is down, then recovers by itself', async () => {
    await readyNode(store, 'node-a');
    await expect(store.ping()).resolves.toBeUndefined();

    await server.stop();
    for (const call of [
      () => store.createSession(sessionSpec('s1'), createOptions(10)),
      () => store.getSession('s1'),
      () => store.listNodes(),
      () => store.ping(),
    ]) {
      const { error, ms } = await rejection(call());
      expect(error).toBeInstanceOf(VcaError);
      expect((error as VcaError).code).toBe('VCA_ERR_STORE_UNAVAILABLE');
      expect(ms).toBeLessThan(2_000);
    }

    await server.restart();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { error } = await rejection(store.ping());
      if (error === undefined) break;
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The restarted Redis is empty; the scripts load again on the new connection.
    expect(await store.listNodes()).toEqual([]);
    await readyNode(store, 'node-b');
    expect((await store.createSession(sessionSpec('s2'), createOptions(20))).kind).toBe('assigned');
  });
});
