/** Public surface of placement: the index, the strategies and the latency policies. */
export type {
  LatencyPlan,
  LatencyPolicy,
  LatencyRules,
  LatencyStep,
  RegionLatency,
} from './latency-policy.js';
export { latencyPlan, latencySchedule, latencyStepAt, orderedLatencies } from './latency-policy.js';
export type { PlacementChoice, PlacementRequest } from './placement-index.js';
export { PlacementIndex } from './placement-index.js';
export type { PlacementStrategy } from './strategy.js';
export { placementStrategies } from './strategy.js';
