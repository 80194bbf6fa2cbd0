/**
 * The Redis store's telemetry fast path (scripts/lib/telemetry.lua): a report that only moves the
 * samples, on a node whose telemetry guard holds, is written without reading the GPUs. Checked against
 * the full path on a second redis-server whose store has its guard cleared before every report (so it
 * always takes the full path): after every step of random sequences both hold the same GPU hashes
 * (the guard aside), the same pool index and freshness, and answer the same; and against the embedded
 * store's answers. Plus the moves the guard must never hide: a free share that moves, a covered pending
 * session, a state change, a GPU gone stale and back.
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import type { GpuTelemetry, TelemetryReport } from '../../src/fleet/telemetry.js';
import type { StateStore, TelemetryOutcome } from '../../src/state/state-store.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import { sessionFacts } from './differential-model.js';
import { createEmbeddedStore } from './embedded-factory.js';
import { createTestRedisStore } from './redis-factory.js';
import { createOptions, heavyFormat, lightFormat, registration, sessionSpec } from './store-fixtures.js';

const rules = { settleMs: 300, maxClockSkewMs: 1_500, vramReserveMiB: { L4: 400 } };

let fastServer: RedisServer;
let fullServer: RedisServer;
let fastClient: Redis;
let fullClient: Redis;

beforeAll(async () => {
  [fastServer, fullServer] = await Promise.all([startRedisServer(), startRedisServer()]);
  fastClient = new Redis(fastServer.url);
  fullClient = new Redis(fullServer.url);
});

afterAll(async () => {
  fastClient?.disconnect();
  fullClient?.disconnect();
  await Promise.all([fastServer?.stop(), fullServer?.stop()]);
});

async function hgetallCalls(client: Redis): Promise<number> {
  const text = await client.info('commandstats');
  return Number(/^cmdstat_hgetall:calls=(\d+)/m.exec(text)?.[1] ?? 0);
}

/** Every key of a store's prefix, as comparable text (the prefix cut, the telemetry guard left out). */
async function snapshot(client: Redis, store: RedisStore): Promise<Record<string, unknown>> {
  const base = store.keys.base;
  const keys = (await client.keys(`${base}:*`)).sort();
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const name = key.slice(base.length);
    const type = await client.type(key);
    if (type === 'hash') {
      const hash = await client.hgetall(key);
      delete hash.tg;
      out[name] = hash;
    } else if (type === 'zset') out[name] = await client.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'set') out[name] = (await client.smembers(key)).sort();
    else if (type === 'string') out[name] = await client.get(key);
  }
  return out;
}

/** The comparable part of an answer (sessions by their facts, the moved node by its GPUs). */
function comparable(outcome: TelemetryOutcome) {
  return {
    ...outcome,
    movedNode: outcome.movedNode ? { id: outcome.movedNode.id, gpus: outcome.movedNode.gpus } : null,
    sessions: outcome.sessions?.map(sessionFacts) ?? null,
  };
}

interface Trio {
  fast: RedisStore;
  full: RedisStore;
  embedded: StateStore;
  now: number;
  fastReports: number;
  reports: number;
}

async function trio(): Promise<Trio> {
  const [fast, full] = await Promise.all([
    createTestRedisStore(fastServer.url, rules),
    createTestRedisStore(fullServer.url, rules),
  ]);
  return {
    fast,
    full,
    embedded: createEmbeddedStore({ requireTelemetry: true, ...rules }),
    now: 1_000,
    fastReports: 0,
    reports: 0,
  };
}

async function close(t: Trio): Promise<void> {
  await Promise.all([t.fast.close(), t.full.close()]);
}

/** Registers `id` with 3 L4 on all three stores. */
async function register(t: Trio, id: string): Promise<void> {
  for (const store of [t.fast, t.full, t.embedded]) {
    await store.registerNode(registration(id, [{ model: 'L4', count: 3 }]), t.now);
  }
}

/** One report on all three: the same answers, the same Redis state; true when the fast path took it. */
async function report(t: Trio, id: string, gpus: GpuTelemetry[], sessions = true): Promise<boolean> {
  const body: TelemetryReport = { gpus };
  await fullClient.hset(`${t.full.keys.base}:node:${id}`, 'tg', '');
  const before = await hgetallCalls(fastClient);
  const fast = await t.fast.reportTelemetry(id, body, t.now, { sessions });
  const fastPath = (await hgetallCalls(fastClient)) === before;
  const full = await t.full.reportTelemetry(id, body, t.now, { sessions });
  const embedded = await t.embedded.reportTelemetry(id, body, t.now, { sessions });
  expect(comparable(fast)).toEqual(comparable(full));
  expect(comparable(fast)).toEqual(comparable(embedded));
  expect(await snapshot(fastClient, t.fast)).toEqual(await snapshot(fullClient, t.full));
  expect(await t.fast.getNode(id)).toEqual(await t.embedded.getNode(id));
  t.reports++;
  if (fastPath) t.fastReports++;
  return fastPath;
}

function gpu(index: number, values: Partial<GpuTelemetry> = {}): GpuTelemetry {
  return {
    index,
    utilizationGpu: 3,
    utilizationEncoder: 1,
    memoryUsed: 300,
    memoryTotal: 23034,
    encoderSessions: 0,
    temperatureGpu: 45,
    throttleActive: false,
    ...values,
  };
}

const idle = [gpu(0), gpu(1), gpu(2)];

describe('redis store: the telemetry fast path', () => {
  let t: Trio;
  /** Reports of the random sequences, and how many of them took the fast path. */
  const totals = { reports: 0, fastReports: 0 };

  beforeEach(async () => {
    t = await trio();
  });

  afterEach(async () => {
    await close(t);
  });

  it('takes the fast path for a repeated report, and the full path gives the same state', async () => {
    await register(t, 'steady');
    expect(await report(t, 'steady', idle)).toBe(false); // to ready
    expect(await report(t, 'steady', idle)).toBe(false); // writes the guard
    expect(await fastClient.hget(`${t.fast.keys.base}:node:steady`, 'tg')).not.toBe('');
    t.now += 1_000;
    expect(await report(t, 'steady', idle)).toBe(true);
    t.now += 1_000;
    expect(await report(t, 'steady', idle, false)).toBe(true);
  });

  it('moves the pool scores when a free share moves, as the full path does', async () => {
    await register(t, 'moves');
    await report(t, 'moves', idle);
    await report(t, 'moves', idle);
    const scores = () => fastClient.zrange(`${t.fast.keys.base}:pool-gpu:L4|`, 0, -1, 'WITHSCORES');
    const before = await scores();
    t.now += 1_000;
    const busier = [gpu(0, { utilizationGpu: 40 }), gpu(1), gpu(2, { memoryUsed: 9_000 })];
    expect(await report(t, 'moves', busier)).toBe(true);
    expect(await scores()).not.toEqual(before);
    const node = await t.fast.getNode('moves');
    expect(node?.gpus[0]?.effective.gpu).toBe(400_000);
    expect(node?.gpus[2]?.effective.vramMiB).toBe(9_000);
    t.now += 1_000;
    expect(await report(t, 'moves', busier)).toBe(true);
    t.now += 1_000;
    expect(await report(t, 'moves', idle)).toBe(true);
    expect(await scores()).toEqual(before);
  });

  it('stays on the fast path through noisy reports and repeats, in step with the full path', async () => {
    await register(t, 'noisy');
    await report(t, 'noisy', idle);
    await report(t, 'noisy', idle);
    let fast = 0;
    for (let i = 0; i < 24; i++) {
      t.now += 500;
      const wobble = (k: number) => ((i * 7 + k * 3) % 5) - 2;
      const gpus = [0, 1, 2].map((index) =>
        gpu(index, {
          utilizationGpu: 5 + wobble(index),
          utilizationEncoder: 2 + wobble(index + 1),
          memoryUsed: 450 + wobble(index + 2),
          temperatureGpu: 40 + wobble(index),
        }),
      );
      if (await report(t, 'noisy', gpus)) fast++;
      // Every third report comes twice (the same samples again: the cached answer).
      if (i % 3 === 2 && (await report(t, 'noisy', gpus))) fast++;
    }
    expect(fast).toBe(32);
  });

  it('takes the full path when a GPU becomes too hot or throttles (its eligibility changes)', async () => {
    await register(t, 'hot');
    await report(t, 'hot', idle);
    await report(t, 'hot', idle);
    t.now += 1_000;
    expect(await report(t, 'hot', [gpu(0, { temperatureGpu: 90 }), gpu(1), gpu(2)])).toBe(false);
    expect((await t.fast.getNode('hot'))?.gpus[0]?.eligible).toBe(false);
    t.now += 1_000;
    expect(await report(t, 'hot', [gpu(0, { temperatureGpu: 91 }), gpu(1), gpu(2)])).toBe(true);
    t.now += 1_000;
    expect(await report(t, 'hot', [gpu(0), gpu(1, { throttleActive: true }), gpu(2)])).toBe(false);
    expect((await t.fast.getNode('hot'))?.gpus.map((g) => g.eligible)).toEqual([true, false, true]);
  });

  it('covers a pending session only through the full path, then goes fast again', async () => {
    await register(t, 'pending');
    await report(t, 'pending', idle);
    await report(t, 'pending', idle);
    const options = createOptions(t.now, { strategy: 'packed' });
    for (const store of [t.fast, t.full, t.embedded]) {
      await store.createSession(sessionSpec('p1', heavyFormat), options);
    }
    expect(await fastClient.hget(`${t.fast.keys.base}:node:pending`, 'tg')).toBe('');
    t.now += 1_000;
    expect(await report(t, 'pending', idle)).toBe(false); // covers it
    t.now += 1_000;
    expect(await report(t, 'pending', idle)).toBe(true); // committed dominates the idle samples
    for (const store of [t.fast, t.full, t.embedded]) await store.endSession('p1', 'released', t.now);
    t.now += 1_000;
    expect(await report(t, 'pending', idle)).toBe(false);
  });

  it('sees a state change and a GPU gone stale and back', async () => {
    await register(t, 'states');
    await report(t, 'states', idle);
    await report(t, 'states', idle);
    // A session keeps the node draining (an empty one would be drained at once).
    for (const store of [t.fast, t.full, t.embedded]) {
      await store.createSession(sessionSpec('held'), createOptions(t.now));
      await store.setNodeState('states', 'draining', t.now, t.now + 60_000);
    }
    t.now += 1_000;
    expect(await report(t, 'states', idle)).toBe(false);
    expect((await t.fast.getNode('states'))?.state).toBe('draining');
    expect((await t.fast.getNode('states'))?.gpus.some((gpu) => gpu.eligible)).toBe(false);
    t.now += 1_000;
    expect(await report(t, 'states', idle)).toBe(true);
    for (const store of [t.fast, t.full, t.embedded]) await store.setNodeState('states', 'ready', t.now);
    t.now += 1_000;
    expect(await report(t, 'states', idle)).toBe(false);
    expect((await t.fast.getNode('states'))?.gpus.filter((gpu) => gpu.eligible)).toHaveLength(3);
    // Every GPU but one reports; then the silent one goes stale.
    for (let i = 0; i < 3; i++) {
      t.now += 2_500;
      await report(t, 'states', [gpu(0), gpu(1)]);
      for (const store of [t.fast, t.full, t.embedded]) await store.sweepStale(t.now);
    }
    const stale = await t.fast.getNode('states');
    expect(stale?.gpus[2]?.stale).toBe(true);
    expect(stale?.gpus[2]?.eligible).toBe(false);
    t.now += 1_000;
    expect(await report(t, 'states', idle)).toBe(false);
    const back = await t.fast.getNode('states');
    expect(back?.gpus[2]?.stale).toBe(false);
    expect(back?.gpus[2]?.eligible).toBe(true);
    t.now += 1_000;
    expect(await report(t, 'states', idle)).toBe(true);
    // Every GPU silent: unhealthy, then ready again with the next report.
    t.now += 7_000;
    for (const store of [t.fast, t.full, t.embedded]) await store.sweepStale(t.now);
    expect((await t.fast.getNode('states'))?.state).toBe('unhealthy');
    t.now += 1_000;
    const answer = await t.fast.reportTelemetry('states', { gpus: idle }, t.now);
    expect(answer.state).toBe('ready');
    expect(answer.movedNode?.state).toBe('ready');
  });

  it('keeps both paths identical over random reports, sessions, drains and silences', async () => {
    const value = fc.constantFrom(0, 1, 2, 3, 40, 41, 95);
    const sample = fc.record({
      utilizationGpu: fc.option(value, { nil: undefined }),
      utilizationEncoder: fc.option(value, { nil: undefined }),
      memoryUsed: fc.option(fc.constantFrom(0, 300, 302, 400, 9_000, 30_000), { nil: undefined }),
      encoderSessions: fc.option(fc.constantFrom(0, 1, 2), { nil: undefined }),
      memoryTotal: fc.constantFrom(undefined, 23034, 22_000),
      temperatureGpu: fc.constantFrom(undefined, 45, 81, 82, 90),
      throttleActive: fc.boolean().map((on) => on && Math.random() < 0.2),
      uuid: fc.constantFrom(undefined, 'GPU-a'),
      name: fc.constantFrom(undefined, 'NVIDIA L4'),
    });
    const step = fc.oneof(
      {
        weight: 10,
        arbitrary: fc.record({
          kind: fc.constant('report' as const),
          gpus: fc.array(sample, { minLength: 3, maxLength: 3 }),
          repeat: fc.nat(3),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('create' as const), heavy: fc.boolean() }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('end' as const), pick: fc.nat(5) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          ms: fc.integer({ min: 0, max: 8_000 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('state' as const),
          to: fc.constantFrom('draining' as const, 'ready' as const),
        }),
      },
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 25 }), async (steps) => {
        const r = await trio();
        try {
          const id = `rand-${run++}`;
          await register(r, id);
          const live: string[] = [];
          let sessions = 0;
          for (const s of steps) {
            if (s.kind === 'report') {
              const gpus = s.gpus.map((values, index) => gpu(index, values));
              for (let i = 0; i <= s.repeat; i++) {
                await report(r, id, gpus, i % 2 === 0);
                r.now += 500;
              }
            } else if (s.kind === 'create') {
              const sid = `s${sessions++}`;
              const spec = sessionSpec(sid, s.heavy ? heavyFormat : lightFormat);
              const options = createOptions(r.now, { waitMode: 'no-wait' });
              const outcomes = await Promise.all(
                [r.fast, r.full, r.embedded].map((store) => store.createSession(spec, options)),
              );
              expect(outcomes[0]!.kind).toBe(outcomes[2]!.kind);
              expect(outcomes[1]!.kind).toBe(outcomes[2]!.kind);
              if (outcomes[0]!.kind === 'assigned') live.push(sid);
            } else if (s.kind === 'end') {
              const sid = live.splice(s.pick % Math.max(1, live.length), 1)[0];
              if (sid)
                for (const store of [r.fast, r.full, r.embedded])
                  await store.endSession(sid, 'released', r.now);
            } else if (s.kind === 'advance') {
              r.now += s.ms;
              for (const store of [r.fast, r.full, r.embedded]) await store.sweepStale(r.now);
            } else {
              const node = await r.embedded.getNode(id);
              const allowed =
                s.to === 'draining'
                  ? node?.state === 'ready'
                  : node?.state === 'draining' && (node?.sessions ?? 0) > 0;
              if (allowed) {
                for (const store of [r.fast, r.full, r.embedded])
                  await store.setNodeState(id, s.to, r.now, r.now + 600_000);
              }
            }
            expect(await snapshot(fastClient, r.fast)).toEqual(await snapshot(fullClient, r.full));
          }
          totals.reports += r.reports;
          totals.fastReports += r.fastReports;
        } finally {
          await close(r);
        }
      }),
      { numRuns: Number(process.env.VCA_TELEMETRY_GUARD_RUNS ?? 60), seed: 20261129 },
    );
    console.log(`telemetry guard: ${totals.fastReports} of ${totals.reports} reports on the fast path`);
    // The sequences must exercise both paths.
    expect(totals.fastReports).toBeGreaterThan(20);
    expect(totals.reports - totals.fastReports).toBeGreaterThan(20);
  }, 240_000);
});
