/** Public surface of scaling: drain victims, the fleet service, the autoscaler policy and Heat's removal order. */
export type { AutoscalerDecision, AutoscalerInput } from './autoscaler-policy.js';
export {
  decideScaling,
  freeReferenceSlots,
  nodeFreeSlots,
  scaleDownCandidates,
} from './autoscaler-policy.js';
export { committedLoad, pickDrainVictims } from './drain-planner.js';
export { FleetService, type FleetServiceOptions, isInGroup } from './fleet-service.js';
export {
  createdAtSecond,
  type HeatAdjustmentType,
  heatAdjustmentType,
  heatNewCapacity,
  heatRemovalOrder,
  heatVictims,
} from './heat-removal-order.js';
export { type HeatResize, type HeatResizeOutcome, HeatScaleDown } from './heat-scale-down.js';
