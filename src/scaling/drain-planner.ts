/**
 * Choosing scale-down victims when the orchestrator names only a count: nodes that serve nobody yet
 * go first, then unhealthy ones, then the least committed, so the fewest sessions have to move.
 */
import type { NodeState } from '../fleet/node-state.js';
import type { NodeView } from '../state/state-store.js';

const stateOrder: Readonly<Record<string, number>> = { provisioning: 0, unhealthy: 1, ready: 2 };

/** The states a victim is picked from, and must still be in when its drain is applied. */
export const drainVictimStates: readonly NodeState[] = ['provisioning', 'unhealthy', 'ready'];

/** Committed render load of a node, summed over its GPUs, in GPU parts per million. */
export function committedLoad(node: NodeView): number {
  let total = 0;
  for (const gpu of node.gpus) total += gpu.committed.gpu;
  return total;
}

/** Picks `count` nodes to drain, least committed first; never a node already draining or drained. */
export function pickDrainVictims(nodes: readonly NodeView[], count: number): NodeView[] {
  return nodes
    .filter((node) => drainVictimStates.includes(node.state))
    .sort(
      (a, b) =>
        stateOrder[a.state]! - stateOrder[b.state]! ||
        a.sessions - b.sessions ||
        committedLoad(a) - committedLoad(b) ||
        b.registeredAt - a.registeredAt ||
        a.id.localeCompare(b.id),
    )
    .slice(0, Math.max(0, count));
}
