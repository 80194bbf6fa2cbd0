/**
 * Session owners on the Redis store, beyond the store contract: the per-owner limit holds when
 * gateway instances race on one Redis, an owner's place comes back whichever instance ends the
 * session, and session records written before sessions had owners stay readable and endable.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import { createTestRedisStore, freshKeyPrefix } from './redis-factory.js';
import { createOptions, expectInvariant, readyNode, sessionSpec } from './store-fixtures.js';

let server: RedisServer;
let inspector: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  inspector = new Redis(server.url);
});

afterAll(async () => {
  inspector?.disconnect();
  await server?.stop();
});

async function twoInstances(): Promise<[RedisStore, RedisStore]> {
  const keyPrefix = freshKeyPrefix();
  return [
    await createTestRedisStore(server.url, { keyPrefix }),
    await createTestRedisStore(server.url, { keyPrefix }),
  ];
}

describe('redis store: session owners across instances', () => {
  it('admits exactly maxOwnerSessions per owner when two instances race', async () => {
    const [a, b] = await twoInstances();
    try {
      await readyNode(a, 'node-a', [{ model: 'L4', count: 8 }]);
      const owners = ['gamer-1', 'gamer-2', 'gamer-3', 'gamer-4'];
      const outcomes = await Promise.all(
        Array.from({ length: 80 }, (_, i) => {
          const owner = owners[i % owners.length]!;
          return (i % 2 === 0 ? a : b)
            .createSession(
              sessionSpec(`s${i}`, undefined, { owner }),
              createOptions(10, { maxOwnerSessions: 2 }),
            )
            .then((outcome) => ({ owner, outcome }));
        }),
      );
      for (const owner of owners) {
        const mine = outcomes.filter((entry) => entry.owner === owner).map((entry) => entry.outcome);
        expect(
          mine.filter((outcome) => outcome.kind === 'assigned'),
          owner,
        ).toHaveLength(2);
        expect(
          mine.filter((outcome) => outcome.kind === 'refused' && outcome.reason === 'owner-limit'),
        ).toHaveLength(18);
      }
      // Ended on one instance, the place is free on the other at once.
      const first = outcomes.find((entry) => entry.owner === 'gamer-1' && entry.outcome.kind === 'assigned')!;
      expect(
        first.outcome.kind === 'assigned' && (await b.endSession(first.outcome.session.id, 'released', 20)),
      ).toBeTruthy();
      const again = await a.createSession(
        sessionSpec('again', undefined, { owner: 'gamer-1' }),
        createOptions(30, { maxOwnerSessions: 2 }),
      );
      expect(again.kind).toBe('assigned');
      expect(
        (
          await a.createSession(
            sessionSpec('over', undefined, { owner: 'gamer-1' }),
            createOptions(31, { maxOwnerSessions: 2 }),
          )
        ).kind,
      ).toBe('refused');
      await expectInvariant(a);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('keeps the owner in its own hash field, not in the spec JSON', async () => {
    const store = await createTestRedisStore(server.url);
    try {
      await readyNode(store, 'node-a');
      await store.createSession(sessionSpec('mine', undefined, { owner: 'gamer-a' }), createOptions(10));
      const [spec, owner] = await inspector.hmget(store.keys.session('mine'), 'spec', 'owner');
      expect(owner).toBe('gamer-a');
      expect(JSON.parse(spec!)).not.toHaveProperty('owner');
      expect(await inspector.smembers(`${store.keys.base}:owner-sessions:gamer-a`)).toEqual(['mine']);
      await store.endSession('mine', 'released', 20);
      expect(await inspector.exists(`${store.keys.base}:owner-sessions:gamer-a`)).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('reads, renews, ends and expires a session recorded before sessions had owners', async () => {
    const store = await createTestRedisStore(server.url);
    try {
      await readyNode(store, 'node-a');
      for (const id of ['old-1', 'old-2']) {
        expect((await store.createSession(sessionSpec(id), createOptions(10))).kind).toBe('assigned');
        // As an older version wrote it: no owner field at all.
        await inspector.hdel(store.keys.session(id), 'owner');
      }
      expect(await store.getSession('old-1')).toMatchObject({ id: 'old-1', state: 'assigned', owner: null });
      expect(await store.renewLeases(['old-1'], 50_000)).toBe(1);
      const onA = (await store.sessionsOnNode('node-a')).map((session) => session.owner);
      expect(onA.every((owner) => owner === null)).toBe(true);
      const ended = await store.endSession('old-1', 'released', 20);
      expect(ended?.session).toMatchObject({ state: 'ended', owner: null });
      const expired = await store.expireSessions(10 + 60_000);
      expect(expired.map((end) => [end.session.id, end.session.owner])).toEqual([['old-2', null]]);
      await expectInvariant(store);
    } finally {
      await store.close();
    }
  });
});
