/**
 * The Redis store on the other deployments operators run: Redis Cluster (three masters; the whole store
 * contract, so every script runs with Cluster routing) and a master watched by Sentinel (sessions
 * survive a failover to the replica, and the store follows the new master by itself).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../kit/polling.js';
import { type RedisClusterSetup, startRedisCluster } from '../../kit/redis-cluster.js';
import { type RedisSentinelSetup, startRedisSentinel } from '../../kit/redis-sentinel.js';
import { isVcaError } from '../../src/errors.js';
import type { VcaEvent } from '../../src/sessions/events.js';
import type { RedisClient, RedisStore } from '../../src/store/redis/index.js';
import { RedisEventRelay } from '../../src/store/redis/redis-event-relay.js';
import { createTestRedisStore } from './redis-factory.js';
import { describeStoreContract } from './store-contract.js';
import { createOptions, expectInvariant, readyNode, sessionSpec } from './store-fixtures.js';

/** Two instances' relays on one channel: what one publishes reaches the other, never itself. */
async function expectRelayBetween(a: RedisClient, b: RedisClient): Promise<void> {
  const channel = `relay-test-${Date.now()}`;
  const relayA = await RedisEventRelay.start(a, channel, 'instance-a');
  const relayB = await RedisEventRelay.start(b, channel, 'instance-b');
  try {
    const heardByA: VcaEvent[] = [];
    const heardByB: VcaEvent[] = [];
    relayA.onRemote((event) => heardByA.push(event));
    relayB.onRemote((event) => heardByB.push(event));
    const fromA = { type: 'queue-positions', positions: new Map([['s1', 3]]) } as const;
    const fromB = { type: 'queue-positions', positions: new Map([['s2', 1]]) } as const;
    relayA.publish(fromA);
    await eventually(async () => expect(heardByB.length).toBeGreaterThan(0), { what: "A's event at B" });
    // Messages on one channel arrive in order: once A hears B's, an echo of its own would be in too.
    relayB.publish(fromB);
    await eventually(async () => expect(heardByA.length).toBeGreaterThan(0), { what: "B's event at A" });
    expect(heardByB).toEqual([fromA]);
    expect(heardByA).toEqual([fromB]);
  } finally {
    await relayA.close();
    await relayB.close();
  }
}

describe('redis store on Redis Cluster', () => {
  let cluster: RedisClusterSetup;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 30_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  describeStoreContract('redis cluster', (rules) =>
    createTestRedisStore({ clusterNodes: cluster.nodes }, rules),
  );

  it('keeps a gaming cluster in one slot, on one master', async () => {
    const store = await createTestRedisStore({ clusterNodes: cluster.nodes });
    try {
      await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }]);
      const created = await store.createSession(sessionSpec('s1'), createOptions(10));
      expect(created.kind).toBe('assigned');
      const holders: number[] = [];
      for (const { host, port } of cluster.nodes) {
        const server = new Redis({ host, port });
        try {
          const keys = await server.keys(`${store.keys.base}:*`);
          if (keys.length > 0) holders.push(port);
        } finally {
          server.disconnect();
        }
      }
      expect(holders).toHaveLength(1);
      await expectInvariant(store);
    } finally {
      await store.close();
    }
  });

  it('relays session events between instances over the Cluster', async () => {
    const a = await createTestRedisStore({ clusterNodes: cluster.nodes });
    const b = await createTestRedisStore({ clusterNodes: cluster.nodes });
    try {
      await expectRelayBetween(a.client, b.client);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('redis store on Redis Cluster: outage', () => {
  it('answers VCA_ERR_STORE_UNAVAILABLE, not a hang or a crash, when the Cluster is gone', async () => {
    const doomed = await startRedisCluster();
    const store = await createTestRedisStore({ clusterNodes: doomed.nodes }, { commandTimeoutMs: 1_000 });
    try {
      await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }]);
      await doomed.stop();
      for (const call of [
        () => store.createSession(sessionSpec('s1'), createOptions(10)),
        () => store.getSession('s1'),
        () => store.ping(),
      ]) {
        const error = await call().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(isVcaError(error) && error.code).toBe('VCA_ERR_STORE_UNAVAILABLE');
      }
    } finally {
      await store.close();
      await doomed.stop();
    }
  }, 30_000);
});

describe('redis store behind Redis Sentinel', () => {
  let setup: RedisSentinelSetup;
  let store: RedisStore;

  beforeAll(async () => {
    setup = await startRedisSentinel();
    store = await createTestRedisStore({ sentinels: setup.sentinels, masterName: setup.masterName });
  }, 30_000);

  afterAll(async () => {
    await store?.close();
    await setup?.stop();
  });

  it('relays session events between instances through the Sentinel-found master', async () => {
    const other = await createTestRedisStore({ sentinels: setup.sentinels, masterName: setup.masterName });
    try {
      await expectRelayBetween(store.client, other.client);
    } finally {
      await other.close();
    }
  });

  it('keeps its sessions through a failover and follows the new master by itself', async () => {
    await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }]);
    const created = await store.createSession(sessionSpec('before'), createOptions(10));
    expect(created.kind).toBe('assigned');
    // Replication is asynchronous: wait until the replica has the session before killing the master.
    const master = new Redis({ host: '127.0.0.1', port: setup.masterPort });
    try {
      expect(await master.call('WAIT', '1', '5000')).toBe(1);
    } finally {
      master.disconnect();
    }

    await setup.failover();

    // Until the client has found the new master, calls fail cleanly as unavailable; then they work.
    let after: Awaited<ReturnType<RedisStore['createSession']>> | undefined;
    const deadline = Date.now() + 20_000;
    while (after === undefined) {
      try {
        after = await store.createSession(sessionSpec('after'), createOptions(20));
      } catch (error) {
        expect(isVcaError(error) && error.code).toBe('VCA_ERR_STORE_UNAVAILABLE');
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(after.kind).toBe('assigned');
    expect((await store.getSession('before'))?.state).toBe('assigned');
    expect((await store.sessionsOnNode('node-a')).map((session) => session.id).sort()).toEqual([
      'after',
      'before',
    ]);
    await expectInvariant(store);
  }, 40_000);
});
