/** Public surface of placement: the index and the strategies. */
export type { PlacementChoice, PlacementRequest } from './placement-index.js';
export { PlacementIndex } from './placement-index.js';
export type { PlacementStrategy } from './strategy.js';
export { placementStrategies } from './strategy.js';
