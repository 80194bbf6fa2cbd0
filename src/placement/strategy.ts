/**
 * Placement strategies: how to choose among GPUs that fit. Each one names the order in which the
 * index walks its free-capacity buckets; adding a strategy means adding a walk order here.
 */
export type PlacementStrategy = 'packed' | 'spread';

export const placementStrategies: readonly PlacementStrategy[] = ['packed', 'spread'];

/**
 * `packed` (default): best fit on the request's dominant dimension; fills busy GPUs first so whole
 * nodes empty out and can be scaled down. `spread`: least loaded on the dominant dimension first, for
 * the most thermal and performance margin per session.
 */
export function walksUpward(strategy: PlacementStrategy): boolean {
  return strategy === 'packed';
}
