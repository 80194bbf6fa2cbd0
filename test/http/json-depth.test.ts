/** Specification of the JSON nesting-depth cap: what counts as a level, and agreement with a real walk. */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exceedsJsonDepth, maxJsonDepth } from '../../src/json-depth.js';

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

/** The nesting depth of a parsed value, walked with an explicit stack. */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (typeof item !== 'object' || item === null) continue;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return deepest;
}

describe('json depth: the cap', () => {
  it(`accepts ${maxJsonDepth} levels and refuses one more, for arrays and objects alike`, () => {
    expect(exceedsJsonDepth(nested(maxJsonDepth))).toBe(false);
    expect(exceedsJsonDepth(nested(maxJsonDepth + 1))).toBe(true);
    const objects = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;
    expect(exceedsJsonDepth(objects(maxJsonDepth))).toBe(false);
    expect(exceedsJsonDepth(objects(maxJsonDepth + 1))).toBe(true);
  });

  it('counts depth, not the number of containers side by side', () => {
    expect(exceedsJsonDepth(`[${Array.from({ length: 10_000 }, () => '[[]]').join(',')}]`)).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    const inString = JSON.stringify({ text: nested(500), quoted: `\\"${nested(500)}` });
    expect(exceedsJsonDepth(inString)).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(inString))).toBe(false);
  });

  it('reads UTF-8 bytes as it reads the decoded text', () => {
    const text = JSON.stringify({ név: ['héllo', '日本語', '😀'], deep: JSON.parse(nested(40)) });
    expect(exceedsJsonDepth(Buffer.from(text), 41)).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(text), 40)).toBe(true);
    expect(exceedsJsonDepth(text, 40)).toBe(true);
  });

  it("stops at the first level past the cap: an 8,000-deep text costs no more than the cap's", () => {
    expect(exceedsJsonDepth(`${'['.repeat(8000)}${']'.repeat(8000)}`)).toBe(true);
    expect(exceedsJsonDepth('['.repeat(1_000_000))).toBe(true);
  });

  it('agrees with a walk of the parsed value on any JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, cap) => {
        const text = JSON.stringify(value);
        expect(exceedsJsonDepth(text, cap)).toBe(depthOf(value) > cap);
        expect(exceedsJsonDepth(Buffer.from(text), cap)).toBe(depthOf(value) > cap);
      }),
    );
  });
});
