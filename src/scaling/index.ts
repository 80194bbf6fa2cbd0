/** Public surface of scaling: drain victims, the fleet service and the autoscaler policy. */
export type { AutoscalerDecision, AutoscalerInput } from './autoscaler-policy.js';
export { decideScaling, freeReferenceSlots, nodeFreeSlots } from './autoscaler-policy.js';
export { committedLoad, pickDrainVictims } from './drain-planner.js';
export { FleetService, type FleetServiceOptions } from './fleet-service.js';
