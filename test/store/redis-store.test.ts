/**
 * The Redis store against a real redis-server: the same store contract as the embedded store, then what
 * only a shared store must guarantee (several instances, concurrency, one round trip, one hash tag).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import { describeCostEvidenceContract } from './cost-evidence-contract.js';
import { describePendingLoadContract } from './pending-load-contract.js';
import { createTestRedisStore, freshKeyPrefix } from './redis-factory.js';
import { describeStoreContract } from './store-contract.js';
import {
  createOptions,
  expectInvariant,
  heavyFormat,
  leaseMs,
  readyNode,
  registration,
  sessionSpec,
} from './store-fixtures.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describeStoreContract('redis', (rules) => createTestRedisStore(server.url, rules));
describePendingLoadContract('redis', (options) => createTestRedisStore(server.url, options));
describeCostEvidenceContract('redis', () => createTestRedisStore(server.url));

describe('redis store: shared by several gateway instances', () => {
  async function twoInstances(): Promise<[RedisStore, RedisStore]> {
    const keyPrefix = freshKeyPrefix();
    return [
      await createTestRedisStore(server.url, { keyPrefix }),
      await createTestRedisStore(server.url, { keyPrefix }),
    ];
  }

  async function closeAll(stores: RedisStore[]) {
    await Promise.all(stores.map((store) => store.close()));
  }

  it("sees the other instance's nodes and sessions", async () => {
    const [a, b] = await twoInstances();
    try {
      await readyNode(a, 'node-a', [{ model: 'L4', count: 2 }]);
      expect((await b.getNode('node-a'))?.state).toBe('ready');
      const created = await a.createSession(sessionSpec('s1'), createOptions(10));
      expect(created.kind).toBe('assigned');
      expect(await b.getSession('s1')).toEqual(created.kind === 'assigned' ? created.session : undefined);
      expect((await b.sessionsOnNode('node-a')).map((session) => session.id)).toEqual(['s1']);
      const ended = await b.endSession('s1', 'released', 20);
      expect(ended?.session.state).toBe('ended');
      expect(await a.endSession('s1', 'released', 30)).toBeUndefined();
      await expectInvariant(a);
    } finally {
      await closeAll([a, b]);
    }
  });

  it('admits exactly the capacity under 200 concurrent requests from two instances', async () => {
    const [a, b] = await twoInstances();
    try {
      // 50 L4 GPUs, and a format that fills one L4 on its own: 50 slots.
      for (let node = 0; node < 10; node++) await readyNode(a, `node-${node}`, [{ model: 'L4', count: 5 }]);
      const outcomes = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          (i % 2 === 0 ? a : b).createSession(
            sessionSpec(`s${i}`, heavyFormat),
            createOptions(100, { maxQueueLength: 100 }),
          ),
        ),
      );
      const count = (kind: string) => outcomes.filter((outcome) => outcome.kind === kind).length;
      expect(count('assigned')).toBe(50);
      expect(count('queued')).toBe(100);
      expect(count('refused')).toBe(50);
      const gpus = new Set(
        outcomes.flatMap((outcome) =>
          outcome.kind === 'assigned'
            ? [`${outcome.session.placement!.nodeId}#${outcome.session.placement!.gpuIndex}`]
            : [],
        ),
      );
      expect(gpus.size).toBe(50);
      const audit = await b.audit();
      expect(audit.liveSessions).toBe(50);
      expect(audit.queuedSessions).toBe(100);
      await expectInvariant(a);
    } finally {
      await closeAll([a, b]);
    }
  });

  it('ends every expired session exactly once when two instances expire at the same time', async () => {
    const [a, b] = await twoInstances();
    try {
      await readyNode(a, 'node-a', [{ model: 'L40S', count: 4 }]);
      for (let i = 0; i < 40; i++) await a.createSession(sessionSpec(`s${i}`), createOptions(i));
      const [fromA, fromB] = await Promise.all([
        a.expireSessions(leaseMs + 100),
        b.expireSessions(leaseMs + 100),
      ]);
      const ids = [...fromA, ...fromB].map((end) => end.session.id);
      expect(ids).toHaveLength(40);
      expect(new Set(ids).size).toBe(40);
      expect((await a.audit()).liveSessions).toBe(0);
      await expectInvariant(b);
    } finally {
      await closeAll([a, b]);
    }
  });

  it("hands a callback outbox entry to one instance at a time, and to the other once the first one's lease runs out", async () => {
    const [a, b] = await twoInstances();
    try {
      await readyNode(a, 'node-a');
      await a.createSession(sessionSpec('s1'), createOptions(10));
      await a.setNodeState('node-a', 'draining', 20, 90_000);
      await b.endSession('s1', 'released', 30);
      const [fromA, fromB] = await Promise.all([a.claimOutbox(40, 5_000, 10), b.claimOutbox(40, 5_000, 10)]);
      expect([...fromA, ...fromB].map((entry) => entry.id)).toEqual(['node-drained:node-a:0']);
      // The claimer dies without an answer: the entry comes back after the lease, to anyone.
      expect(await b.claimOutbox(5_039, 5_000, 10)).toEqual([]);
      const [again] = await b.claimOutbox(5_040, 5_000, 10);
      expect(again).toMatchObject({ id: 'node-drained:node-a:0', attempts: 2 });
      expect(await b.completeOutbox(again!.id)).toBe(true);
      expect(await a.outboxLength()).toBe(0);
    } finally {
      await closeAll([a, b]);
    }
  });

  it('two instances draining the same picked victims at once: one step drains them, the other changes nothing', async () => {
    const [a, b] = await twoInstances();
    try {
      for (const id of ['node-a', 'node-b', 'node-c']) {
        await readyNode(a, id, undefined, 0, { host: id });
        await a.createSession(sessionSpec(`on-${id}`, undefined, { labels: { host: id } }), createOptions(5));
      }
      const onlyFrom = ['provisioning', 'unhealthy', 'ready'] as const;
      const outcomes = await Promise.allSettled([
        a.drainNodes(['node-a', 'node-b'], 10, 90_000, { onlyFrom }),
        b.drainNodes(['node-b', 'node-c'], 10, 90_000, { onlyFrom }),
      ]);
      const applied = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
      expect(applied).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({
        code: 'VCA_ERR_NODE_STATE',
        extra: { nodeId: 'node-b' },
      });
      // Exactly the winner's two nodes drain; the loser's other node is untouched.
      const draining = (await b.drainingNodes()).map((node) => node.id).sort();
      const winner = (applied[0] as PromiseFulfilledResult<Awaited<ReturnType<RedisStore['drainNodes']>>>)
        .value;
      expect(draining).toEqual(winner.map((node) => node.id).sort());
      expect(draining).toHaveLength(2);
      await expectInvariant(a);
    } finally {
      await closeAll([a, b]);
    }
  });
});

describe('redis store: keys and round trips', () => {
  let inspector: Redis;

  beforeAll(() => {
    inspector = new Redis(server.url);
  });

  afterAll(async () => {
    await inspector.quit();
  });

  it('keeps every key of a cluster under the one hash tag {cluster}', async () => {
    const keyPrefix = freshKeyPrefix();
    const store = await createTestRedisStore(server.url, { keyPrefix, cluster: 'eu-1' });
    try {
      await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }], 0, { region: 'eu-west' });
      await store.createSession(sessionSpec('s1', heavyFormat), createOptions(10));
      await store.createSession(sessionSpec('s2', heavyFormat), createOptions(20));
      await store.endSession('s1', 'released', 30);
      await store.rememberWebhook('delivery-1', { accepted: 1 }, 60_000, 40);
      // The last session of a draining node ends: the callback outbox gets its entry.
      await store.setNodeState('node-a', 'draining', 50, 90_000);
      await store.endSession('s2', 'released', 60);
      expect(await store.outboxLength()).toBe(1);
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await inspector.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      expect(keys.length).toBeGreaterThan(10);
      expect(keys).toEqual(expect.arrayContaining([`${keyPrefix}:{eu-1}:outbox`]));
      for (const key of keys) {
        // Redis Cluster hashes only the part between the first '{' and the next '}'.
        const open = key.indexOf('{');
        const close = key.indexOf('}', open + 1);
        expect(key.slice(open + 1, close), key).toBe('eu-1');
        expect(key.startsWith(`${keyPrefix}:{eu-1}:`), key).toBe(true);
      }
    } finally {
      await store.close();
    }
  });

  it('allocates with exactly one FCALL and no other command', async () => {
    const store = await createTestRedisStore(server.url);
    const monitor = await inspector.monitor();
    try {
      await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }]);
      // Warm up (the first call of a connection is no different: the library is loaded at connect).
      await store.createSession(sessionSpec('warm-up'), createOptions(10));
      const seen: string[] = [];
      const storeAddress = `127.0.0.1:${(store.client as unknown as { stream: { localPort: number } }).stream.localPort}`;
      let recording = false;
      const marker = `marker-${Date.now()}`;
      const markerSeen = new Promise<void>((resolve) => {
        monitor.on('monitor', (_time: string, args: string[], source: string) => {
          const name = args[0]!.toLowerCase();
          if (name === 'echo' && args[1] === marker) {
            if (recording) resolve();
            recording = true;
            return;
          }
          // Only the store's own connection; commands its script runs show up with source "lua".
          if (recording && source === storeAddress) seen.push(name);
        });
      });
      const stats = new Redis(server.url);
      await stats.echo(marker);
      const before = await commandStats(stats);
      const outcome = await store.createSession(sessionSpec('s1'), createOptions(20));
      const after = await commandStats(stats);
      await stats.echo(marker);
      await markerSeen;
      await stats.quit();
      expect(outcome.kind).toBe('assigned');
      expect((after.get('fcall') ?? 0) - (before.get('fcall') ?? 0)).toBe(1);
      expect((after.get('evalsha') ?? 0) - (before.get('evalsha') ?? 0)).toBe(0);
      expect((after.get('eval') ?? 0) - (before.get('eval') ?? 0)).toBe(0);
      expect(seen).toEqual(['fcall']);
    } finally {
      monitor.disconnect();
      await store.close();
    }
  });

  it('reads draining nodes from their own index, not by reading every node', async () => {
    const store = await createTestRedisStore(server.url);
    try {
      for (let i = 0; i < 30; i++) {
        const id = `node-${String(i).padStart(2, '0')}`;
        await readyNode(store, id, undefined, 0, { host: id });
      }
      // A node drains only while it holds sessions: one on each node that will drain.
      for (const id of ['node-20', 'node-03', 'node-07']) {
        const created = await store.createSession(
          sessionSpec(`on-${id}`, undefined, { labels: { host: id } }),
          createOptions(5),
        );
        expect(created.kind === 'assigned' && created.session.placement?.nodeId).toBe(id);
      }
      await store.setNodeState('node-20', 'draining', 10, 5_000);
      await store.setNodeState('node-03', 'draining', 11, 5_000);
      await store.setNodeState('node-07', 'draining', 12, 5_000);
      await store.setNodeState('node-07', 'ready', 13);
      const before = await commandStats(inspector);
      const draining = await store.drainingNodes();
      const after = await commandStats(inspector);
      // Registration order, only the nodes still draining.
      expect(draining.map((node) => node.id)).toEqual(['node-03', 'node-20']);
      // One state check per indexed node (2), not one per registered node (30).
      expect((after.get('hget') ?? 0) - (before.get('hget') ?? 0)).toBe(2);
      // A node that drains empty leaves the index.
      const ended = await store.endSession('on-node-03', 'released', 14);
      expect(ended?.drainedNode?.state).toBe('drained');
      expect((await store.drainingNodes()).map((node) => node.id)).toEqual(['node-20']);
    } finally {
      await store.close();
    }
  });

  it('rebuilds the index of draining nodes when a store connects', async () => {
    const keyPrefix = freshKeyPrefix();
    const first = await createTestRedisStore(server.url, { keyPrefix });
    try {
      await readyNode(first, 'node-a');
      await readyNode(first, 'node-b', undefined, 0, { host: 'b' });
      await first.createSession(sessionSpec('on-b', undefined, { labels: { host: 'b' } }), createOptions(5));
      await first.setNodeState('node-b', 'draining', 10, 5_000);
      // Data written by a version without the index: the node hash says draining, the index is empty.
      await inspector.del(`${first.keys.base}:draining`);
      expect(await first.drainingNodes()).toEqual([]);
      const second = await createTestRedisStore(server.url, { keyPrefix });
      try {
        expect((await second.drainingNodes()).map((node) => node.id)).toEqual(['node-b']);
        expect((await first.drainingNodes()).map((node) => node.id)).toEqual(['node-b']);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
  });

  it('sends the commands of one event-loop turn in one write, and each still gets its own answer', async () => {
    const store = await createTestRedisStore(server.url);
    try {
      await readyNode(store, 'node-a', [{ model: 'L4', count: 4 }]);
      // Warm up: the first call of a script on a connection is an EVAL with its body.
      await store.createSession(sessionSpec('warm-up'), createOptions(10));
      await store.endSession('warm-up', 'released', 11);
      const socket = (store.client as unknown as { stream: { _write: unknown; _writev: unknown } }).stream;
      const calls = { write: 0, writev: 0 };
      const ownWrite = socket._write as (...args: unknown[]) => unknown;
      const ownWritev = socket._writev as (...args: unknown[]) => unknown;
      socket._write = function (this: unknown, ...args: unknown[]) {
        calls.write += 1;
        return ownWrite.apply(this, args);
      };
      socket._writev = function (this: unknown, ...args: unknown[]) {
        calls.writev += 1;
        return ownWritev.apply(this, args);
      };
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.createSession(sessionSpec(`s${i}`), createOptions(20))),
      );
      expect(calls).toEqual({ write: 0, writev: 1 });
      expect(outcomes.map((outcome) => outcome.kind === 'assigned' && outcome.session.id)).toEqual(
        Array.from({ length: 8 }, (_, i) => `s${i}`),
      );
      // The next turn's commands are written again (the socket was uncorked).
      expect((await store.getSession('s3'))?.state).toBe('assigned');
      await expectInvariant(store);
    } finally {
      await store.close();
    }
  });
});

describe('redis store: configuration', () => {
  it('makes nodes ready at registration when telemetry is not required', async () => {
    const store = await createTestRedisStore(server.url, { requireTelemetry: false });
    try {
      const { node } = await store.registerNode(registration('node-a'), 0);
      expect(node).toMatchObject({ state: 'ready', stateChangedAt: 0 });
      expect(node.gpus[0]).toMatchObject({ eligible: true, telemetryAt: null });
      expect((await store.createSession(sessionSpec('s1'), createOptions(10))).kind).toBe('assigned');
      await expectInvariant(store);
    } finally {
      await store.close();
    }
  });

  it('uses a client it is given and leaves it open on close', async () => {
    const client = new Redis(server.url);
    try {
      const store = await createTestRedisStore(client);
      await readyNode(store, 'node-a');
      await store.close();
      expect(await client.ping()).toBe('PONG');
    } finally {
      await client.quit();
    }
  });

  it('refuses an unknown GPU model before writing anything', async () => {
    const store = await createTestRedisStore(server.url);
    try {
      const error = await store
        .registerNode(registration('node-x', [{ model: 'Voodoo 2', count: 1 }]), 0)
        .catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'VCA_ERR_UNKNOWN_GPU_MODEL' });
      expect(await store.listNodes()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

async function commandStats(client: Redis): Promise<Map<string, number>> {
  const text = await client.info('commandstats');
  const stats = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(match[1]!, Number(match[2]));
  return stats;
}
