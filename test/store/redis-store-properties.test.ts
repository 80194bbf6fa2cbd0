/**
 * Properties of the Redis store under random operation sequences (fast-check): committed load always
 * equals the sum of live session costs, "nothing fits" is exact — whenever a request is queued or
 * refused for capacity, no eligible GPU could have taken it on every dimension — and a placement is
 * the exact best fit: of all eligible GPUs that could take the session, none leaves less (packed) or
 * more (spread) free share on the session's dominant axis than the one chosen.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { fits, score } from './differential-model.js';
import { createTestRedisStore } from './redis-factory.js';
import {
  costsFor,
  createOptions,
  expectInvariant,
  healthyReport,
  leaseMs,
  registration,
  type SessionFormat,
  sessionSpec,
  staleAfterMs,
} from './store-fixtures.js';

const formats: SessionFormat[] = [
  { game: 'stardew-valley', resolution: '720p', fps: 30 },
  { game: 'hades', resolution: '1080p', fps: 60 },
  { game: 'fortnite', resolution: '1440p', fps: 120 },
  { game: 'cyberpunk-2077', resolution: '1080p', fps: 60 },
];

// The L4 pool holds 8 GPUs, more than a pick's first read of a pool (2), so walks past it, refills
// and candidates that fail the exact check (the GeForce host's 8-session limit) all happen.
const nodes = [
  { id: 'node-l4', gpus: [{ model: 'L4', count: 2 }] },
  { id: 'node-geforce', gpus: [{ model: 'RTX 4080 SUPER', count: 2 }] },
  { id: 'node-l40s', gpus: [{ model: 'L40S', count: 1 }] },
  { id: 'node-l4-big', gpus: [{ model: 'L4', count: 6 }] },
];

type Operation =
  | {
      kind: 'create';
      format: number;
      priority: 'premium' | 'standard';
      wait: boolean;
      strategy: 'packed' | 'spread';
    }
  | { kind: 'end'; pick: number }
  | { kind: 'expire'; advance: number }
  | { kind: 'place-queued' }
  | { kind: 'drain'; node: number }
  | { kind: 'undrain'; node: number }
  | { kind: 'migrate'; pick: number }
  | { kind: 'telemetry'; node: number; utilization: number; encoderSessions: number | null };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      format: fc.nat(formats.length - 1),
      priority: fc.constantFrom('premium' as const, 'standard' as const),
      wait: fc.boolean(),
      strategy: fc.constantFrom('packed' as const, 'spread' as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('end' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), advance: fc.nat(40_000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('place-queued' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('drain' as const), node: fc.nat(nodes.length - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('undrain' as const), node: fc.nat(nodes.length - 1) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('migrate' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('telemetry' as const),
      node: fc.nat(nodes.length - 1),
      utilization: fc.integer({ min: 0, max: 100 }),
      encoderSessions: fc.option(fc.nat(10), { nil: null }),
    }),
  },
);

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describe('redis store: properties', () => {
  it('keeps committed == sum of live costs, places on the exact best fit, refuses or queues only when no eligible GPU fits, and indexes exactly the draining nodes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 5, maxLength: 40 }), async (operations) => {
        const store = await createTestRedisStore(server.url);
        try {
          let now = 0;
          for (const node of nodes) {
            await store.registerNode(registration(node.id, node.gpus), now);
            const count = node.gpus.reduce((total, entry) => total + entry.count, 0);
            await store.recordTelemetry(node.id, healthyReport(count), now);
          }
          const ids: string[] = [];
          for (const [step, op] of operations.entries()) {
            now += 100;
            switch (op.kind) {
              case 'create': {
                const format = formats[op.format]!;
                const id = `s${step}`;
                const before = await store.listNodes();
                const outcome = await store.createSession(
                  sessionSpec(id, format, { priority: op.priority }),
                  createOptions(now, { waitMode: op.wait ? 'wait' : 'no-wait', strategy: op.strategy }),
                );
                if (outcome.kind !== 'refused') ids.push(id);
                if (outcome.kind === 'assigned') {
                  const costs = costsFor(format);
                  const placement = outcome.session.placement!;
                  const lefts: number[] = [];
                  let chosen: number | undefined;
                  for (const node of before) {
                    for (const gpu of node.gpus) {
                      const cost = costs[gpu.model];
                      // The decision first marks GPUs silent for longer than staleAfterMs as stale.
                      const goesStale = gpu.telemetryAt !== null && gpu.telemetryAt < now - staleAfterMs;
                      if (!gpu.eligible || goesStale || !cost || !fits(node, gpu, cost)) continue;
                      const left = score(gpu, cost).left;
                      lefts.push(left);
                      if (node.id === placement.nodeId && gpu.index === placement.gpuIndex) chosen = left;
                    }
                  }
                  expect(chosen, 'the chosen GPU could take the session').toBeDefined();
                  const best = op.strategy === 'packed' ? Math.min(...lefts) : Math.max(...lefts);
                  expect(chosen).toBeCloseTo(best, 12);
                } else {
                  const costs = costsFor(format);
                  for (const node of await store.listNodes()) {
                    for (const gpu of node.gpus) {
                      const cost = costs[gpu.model];
                      if (gpu.eligible && cost)
                        expect(fits(node, gpu, cost), `${node.id}#${gpu.index}`).toBe(false);
                    }
                  }
                }
                break;
              }
              case 'end':
                if (ids.length > 0) await store.endSession(ids[op.pick % ids.length]!, 'released', now);
                break;
              case 'expire':
                now += op.advance;
                await store.expireSessions(now);
                break;
              case 'place-queued':
                await store.placeQueued(now, 'packed', { rest: leaseMs, websocket: leaseMs });
                break;
              case 'drain':
                await store
                  .setNodeState(nodes[op.node]!.id, 'draining', now, now + 1_000)
                  .catch(() => undefined);
                break;
              case 'undrain':
                await store.setNodeState(nodes[op.node]!.id, 'ready', now).catch(() => undefined);
                break;
              case 'migrate':
                if (ids.length > 0) {
                  await store.migrateSession(
                    ids[op.pick % ids.length]!,
                    now,
                    'packed',
                    now + leaseMs,
                    now + 60_000,
                  );
                }
                break;
              case 'telemetry': {
                const node = nodes[op.node]!;
                const count = node.gpus.reduce((total, entry) => total + entry.count, 0);
                await store.recordTelemetry(
                  node.id,
                  healthyReport(count, {
                    utilizationGpu: op.utilization,
                    utilizationEncoder: op.utilization,
                    encoderSessions: op.encoderSessions,
                  }),
                  now,
                );
                break;
              }
            }
            await expectInvariant(store);
            const draining = (await store.listNodes()).filter((node) => node.state === 'draining');
            expect((await store.drainingNodes()).map((node) => node.id)).toEqual(
              draining.map((node) => node.id),
            );
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
