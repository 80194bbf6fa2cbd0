/**
 * Set-bit searches over 64-bit sets stored as two 32-bit words (`words[at]` bits 0..31,
 * `words[at + 1]` bits 32..63): the placement grid's "which rows / columns / cells are non-empty".
 */

const lowestBit = (word: number) => 31 - Math.clz32(word & -word);
const highestBit = (word: number) => 31 - Math.clz32(word);

/** Lowest set bit >= `from`, or -1. */
export function lowestAtLeast(words: Uint32Array, at: number, from: number): number {
  if (from < 32) {
    const low = from === 0 ? words[at]! : words[at]! & (-1 << from);
    if (low !== 0) return lowestBit(low);
    const high = words[at + 1]!;
    return high !== 0 ? 32 + lowestBit(high) : -1;
  }
  if (from >= 64) return -1;
  const high = words[at + 1]! & (-1 << (from - 32));
  return high !== 0 ? 32 + lowestBit(high) : -1;
}

/** Highest set bit < `below` (64 = any), or -1. */
export function highestBelow(words: Uint32Array, at: number, below: number): number {
  if (below > 32) {
    const high = below >= 64 ? words[at + 1]! : words[at + 1]! & ((1 << (below - 32)) - 1);
    if (high !== 0) return 32 + highestBit(high);
    return words[at]! !== 0 ? highestBit(words[at]!) : -1;
  }
  if (below <= 0) return -1;
  const low = below === 32 ? words[at]! : words[at]! & ((1 << below) - 1);
  return low !== 0 ? highestBit(low) : -1;
}

export function setBit(words: Uint32Array, at: number, bit: number): void {
  words[at + (bit >>> 5)]! |= 1 << (bit & 31);
}

export function clearBit(words: Uint32Array, at: number, bit: number): void {
  words[at + (bit >>> 5)]! &= ~(1 << (bit & 31));
}
