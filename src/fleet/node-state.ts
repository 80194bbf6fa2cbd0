/**
 * Node lifecycle: `provisioning -> ready <-> unhealthy`, `ready -> draining -> drained -> removed`.
 * One table says which transitions exist, so every path (webhook, operator, telemetry) obeys it.
 */
export type NodeState = 'provisioning' | 'ready' | 'unhealthy' | 'draining' | 'drained' | 'removed';

export const nodeStates: readonly NodeState[] = [
  'provisioning',
  'ready',
  'unhealthy',
  'draining',
  'drained',
  'removed',
];

const allowedTransitions: Readonly<Record<NodeState, readonly NodeState[]>> = {
  provisioning: ['ready', 'unhealthy', 'draining', 'removed'],
  ready: ['unhealthy', 'draining', 'removed'],
  unhealthy: ['ready', 'draining', 'removed'],
  // draining -> ready is an operator's undrain.
  draining: ['ready', 'drained', 'removed'],
  drained: ['removed'],
  removed: [],
};

export function canTransition(from: NodeState, to: NodeState): boolean {
  return allowedTransitions[from].includes(to);
}
