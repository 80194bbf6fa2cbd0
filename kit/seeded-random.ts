/**
 * The kit's one seeded random source: the simulated GPU's mulberry32 generator (gpu-probe ships it,
 * so it lives there), plus the normal samples the synthetic fleets draw from it.
 */
import { seededRandom } from '../gpu-probe/src/seeded-random.js';

export { seededRandom };

/** A standard normal sample (Box-Muller) from a uniform source such as `seededRandom(seed)`. */
export function gaussian(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
