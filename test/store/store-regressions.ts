/**
 * Regression cases of the divergences the differential test (differential.test.ts) and the review of
 * both stores' rules found: each scenario once on every store, so a rule changed in one language and
 * not in the other fails here by name.
 */
import { describe, expect, it } from 'vitest';
import type { LoadVector } from '../../src/cost/session-cost.js';
import { VcaError } from '../../src/errors.js';
import type { StateStore } from '../../src/state/state-store.js';
import {
  createOptions,
  expectInvariant,
  healthyReport,
  heavyFormat,
  leaseMs,
  readyNode,
  sessionSpec,
} from './store-fixtures.js';

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  return error instanceof VcaError ? error.code : String(error);
}

export function describeStoreRegressions(name: string, createStore: () => Promise<StateStore>): void {
  describe(`store rules shared by both stores: ${name}`, () => {
    async function withStore(test: (store: StateStore) => Promise<void>): Promise<void> {
      const store = await createStore();
      try {
        await test(store);
        await expectInvariant(store);
      } finally {
        await store.close();
      }
    }

    it('a queue pass does not skip a session because one restricted to other GPU models found no GPU', () =>
      withStore(async (store) => {
        await readyNode(store, 'node-l4');
        await readyNode(store, 'node-l40s', [{ model: 'L40S', count: 1 }]);
        await store.recordTelemetry('node-l40s', healthyReport(1, { utilizationGpu: 100 }), 1);
        const onlyL4 = { L4: sessionSpec('x', heavyFormat).costs.L4! };
        await store.createSession(sessionSpec('a', heavyFormat, { costs: onlyL4 }), createOptions(2));
        const x = await store.createSession(
          sessionSpec('x', heavyFormat, { costs: onlyL4 }),
          createOptions(3),
        );
        const y = await store.createSession(sessionSpec('y', heavyFormat), createOptions(4));
        expect([x.kind, y.kind]).toEqual(['queued', 'queued']);
        // Only the L40S frees up: X (L4 only) still finds nothing, Y (same title and format) fits there.
        await store.recordTelemetry('node-l40s', healthyReport(1, { utilizationGpu: 0 }), 5);
        const placed = await store.placeQueued(6, 'packed', { rest: leaseMs, websocket: leaseMs });
        expect(placed.map((session) => [session.id, session.placement?.nodeId])).toEqual([
          ['y', 'node-l40s'],
        ]);
        expect([...(await store.queuePositions()).entries()]).toEqual([['x', 1]]);
      }));

    it('packed ranks GPUs by the dominant need, VRAM included: the tighter stream (encoder or VRAM) share', () =>
      withStore(async (store) => {
        // A VRAM-heavy session: its VRAM share of an L4 (8,000 of 21,882 MiB) is its largest need.
        const vramHeavy: LoadVector = { gpu: 50_000, encoder: 50_000, vramMiB: 8_000, encoderSessions: 1 };
        await readyNode(store, 'node-vram-busy');
        await readyNode(store, 'node-encoder-busy');
        await store.recordTelemetry(
          'node-vram-busy',
          healthyReport(1, { memoryUsed: 10_000, memoryTotal: 23_034, utilizationEncoder: 0 }),
          1,
        );
        await store.recordTelemetry(
          'node-encoder-busy',
          healthyReport(1, { memoryUsed: 0, memoryTotal: 23_034, utilizationEncoder: 20 }),
          1,
        );
        const outcome = await store.createSession(
          sessionSpec('s', heavyFormat, { costs: { L4: vramHeavy } }),
          createOptions(2),
        );
        expect(outcome.kind).toBe('assigned');
        expect(outcome.kind === 'assigned' && outcome.session.placement?.nodeId).toBe('node-vram-busy');
      }));

    it(
      '"nothing fits" is exact: a fitting GPU behind 2,100 that fail the exact check is found',
      () =>
        withStore(async (store) => {
          // 2,100 L4s with less free render share than the one that fits, each out of VRAM: a packed walk
          // meets all of them first.
          const full = healthyReport(4, { utilizationGpu: 50, memoryUsed: 23_034, memoryTotal: 23_034 });
          const nodes = Array.from({ length: 525 }, (_, i) => `full-${i}`);
          for (const id of nodes) {
            await readyNode(store, id, [{ model: 'L4', count: 4 }]);
            await store.recordTelemetry(id, full, 1);
          }
          await readyNode(store, 'roomy');
          await store.recordTelemetry('roomy', healthyReport(1, { utilizationGpu: 10, memoryUsed: 0 }), 1);
          const costs = { L4: { gpu: 300_000, encoder: 50_000, vramMiB: 2_000, encoderSessions: 1 } };
          const outcome = await store.createSession(
            sessionSpec('s', heavyFormat, { costs }),
            createOptions(2),
          );
          expect(outcome.kind === 'assigned' && outcome.session.placement?.nodeId).toBe('roomy');
        }),
      120_000,
    );

    it('refuses an unknown priority class before anything changes, even when a GPU is free', () =>
      withStore(async (store) => {
        await readyNode(store, 'node-a');
        const code = await codeOf(
          store.createSession(sessionSpec('s', heavyFormat, { priority: 'vip' }), createOptions(1)),
        );
        expect(code).toBe('VCA_ERR_UNKNOWN_PRIORITY');
        expect(await store.getSession('s')).toBeUndefined();
        expect((await store.getNode('node-a'))!.gpus[0]!.sessions).toBe(0);
      }));

    it('reads a measured value that is no finite number as unknown', () =>
      withStore(async (store) => {
        await readyNode(store, 'node-a');
        const node = await store.recordTelemetry(
          'node-a',
          healthyReport(1, {
            utilizationGpu: Number.NaN,
            utilizationEncoder: Number.POSITIVE_INFINITY,
            memoryUsed: Number.NaN,
            temperatureGpu: Number.NaN,
          }),
          1,
        );
        expect(node.gpus[0]!.measured).toMatchObject({ gpu: null, encoder: null, vramMiB: null });
        expect(node.gpus[0]!.temperatureCelsius).toBeNull();
      }));
  });
}
