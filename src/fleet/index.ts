/** Public surface of the fleet model: nodes, GPUs, lifecycle and telemetry. */

export type { FleetStateOptions, GpuChangeListener, RegisterOutcome } from './fleet-state.js';
export { FleetState } from './fleet-state.js';
export type { Headroom, MeasuredLoad } from './gpu-slot.js';
export { GpuSlot } from './gpu-slot.js';
export type { NodeState } from './node-state.js';
export { canTransition, nodeStates } from './node-state.js';
export type { OrchestratorMembership } from './orchestrator-membership.js';
export { isMemberOf } from './orchestrator-membership.js';
export type { NodeRegistration } from './render-node.js';
export { RenderNode } from './render-node.js';
export type { GpuTelemetry, TelemetryReport } from './telemetry.js';
