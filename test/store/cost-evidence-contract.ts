/**
 * The learned-cost evidence every StateStore keeps (src/cost/cost-learner.ts): sums merged by
 * addition in one step and answered whole, and a reset per title. Run against the embedded store and a
 * real Redis (embedded-store.test.ts, redis-store.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { evidenceKey } from '../../src/cost/cost-learner.js';
import type { StateStore } from '../../src/state/state-store.js';

export function describeCostEvidenceContract(
  name: string,
  createStore: () => Promise<StateStore> | StateStore,
): void {
  describe(`learned-cost evidence: ${name}`, () => {
    let store: StateStore | undefined;

    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    const cyberA = evidenceKey('L4', 'gpu', 'A', 'cyberpunk-2077', 'cyberpunk-2077');
    const mixedA = evidenceKey('L4', 'gpu', 'A', 'cyberpunk-2077', 'stardew-valley');
    const stardewB = evidenceKey('L4', 'gpu', 'b', 'stardew-valley');
    const cyberB = evidenceKey('RTX 4080 SUPER', 'vram', 'b', 'cyberpunk-2077');

    it('adds increments to their sums and answers every sum; an empty merge only reads', async () => {
      store = await createStore();
      expect(await store.mergeCostEvidence(new Map())).toEqual(new Map());
      await store.mergeCostEvidence(
        new Map([
          [cyberA, 0.25],
          [stardewB, 1 / 3],
        ]),
      );
      const sums = await store.mergeCostEvidence(
        new Map([
          [cyberA, 0.5],
          [cyberB, 2e-7],
        ]),
      );
      expect(sums).toEqual(
        new Map([
          [cyberA, 0.75],
          [stardewB, 1 / 3],
          [cyberB, 2e-7],
        ]),
      );
      expect(await store.mergeCostEvidence(new Map())).toEqual(sums);
    });

    it('never adds what is not a finite number', async () => {
      store = await createStore();
      const sums = await store.mergeCostEvidence(
        new Map([
          [cyberA, Number.NaN],
          [stardewB, Number.POSITIVE_INFINITY],
          [cyberB, 1],
        ]),
      );
      expect(sums).toEqual(new Map([[cyberB, 1]]));
    });

    it('forgets every sum naming one title, on any model, dimension and pair', async () => {
      store = await createStore();
      await store.mergeCostEvidence(
        new Map([
          [cyberA, 1],
          [mixedA, 2],
          [stardewB, 3],
          [cyberB, 4],
        ]),
      );
      expect(await store.resetCostEvidence('cyberpunk-2077')).toBe(3);
      expect(await store.mergeCostEvidence(new Map())).toEqual(new Map([[stardewB, 3]]));
      expect(await store.resetCostEvidence('cyberpunk-2077')).toBe(0);
    });

    it('keeps every increment of merges that race', async () => {
      store = await createStore();
      const s = store;
      await Promise.all(
        Array.from({ length: 50 }, () =>
          s.mergeCostEvidence(
            new Map([
              [cyberA, 1],
              [cyberB, 0.5],
            ]),
          ),
        ),
      );
      expect(await s.mergeCostEvidence(new Map())).toEqual(
        new Map([
          [cyberA, 50],
          [cyberB, 25],
        ]),
      );
    });
  });
}
