/** Public surface of the cluster registry: nodes, GPUs, lifecycle and telemetry. */
export type { NodeRegistration } from './cluster-node.js';
export { ClusterNode } from './cluster-node.js';
export type { ClusterStateOptions, GpuChangeListener, RegisterOutcome } from './cluster-state.js';
export { ClusterState } from './cluster-state.js';
export type { Headroom, MeasuredLoad } from './gpu-slot.js';
export { GpuSlot } from './gpu-slot.js';
export type { NodeState } from './node-state.js';
export { canTransition, nodeStates } from './node-state.js';
export type { GpuTelemetry, TelemetryReport } from './telemetry.js';
