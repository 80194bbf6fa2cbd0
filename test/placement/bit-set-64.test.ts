import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clearBit, highestBelow, lowestAtLeast, setBit } from '../../src/placement/bit-set-64.js';

describe('placement: 64-bit sets', () => {
  it('finds the same bits as a naive scan', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 63 })),
        fc.integer({ min: 0, max: 64 }),
        (bits, k) => {
          const words = new Uint32Array(4);
          for (const bit of bits) setBit(words, 2, bit);
          const sorted = [...bits].sort((a, b) => a - b);
          expect(lowestAtLeast(words, 2, k)).toBe(sorted.find((bit) => bit >= k) ?? -1);
          expect(highestBelow(words, 2, k)).toBe([...sorted].reverse().find((bit) => bit < k) ?? -1);
          if (bits.length > 0) {
            clearBit(words, 2, bits[0]!);
            expect(lowestAtLeast(words, 2, 0)).toBe(sorted.filter((bit) => bit !== bits[0])[0] ?? -1);
          }
          expect(words[0]).toBe(0);
          expect(words[1]).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });
});
