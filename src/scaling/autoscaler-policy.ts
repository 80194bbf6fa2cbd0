/**
 * The autoscaler as a pure decision: from the fleet, the queue and the last actions, decide to scale
 * up by N, scale down these nodes, or hold. Keeps an Agones-style buffer of free reference slots,
 * reacts to a non-empty queue at once, and respects cooldowns and min/max node counts. In a Heat group
 * it scales down only the member Heat removes next.
 */
import type { AutoscalerConfig } from '../config/schema.js';
import type { GpuModel } from '../cost/catalog.js';
import { fullShare, referencePixelRate } from '../cost/session-cost.js';
import type { OrchestratorMembership } from '../fleet/orchestrator-membership.js';
import type { GpuView, NodeView } from '../state/state-store.js';
import { pickDrainVictims } from './drain-planner.js';
import { heatRemovalOrder } from './heat-removal-order.js';

export interface AutoscalerInput {
  now: number;
  nodes: readonly NodeView[];
  queueLength: number;
  lastScaleUpAt: number | null;
  lastScaleDownAt: number | null;
  config: AutoscalerConfig;
  model: (name: string) => GpuModel | undefined;
}

export type AutoscalerDecision =
  | { action: 'hold'; reason: string; freeSlots: number }
  | { action: 'scale-up'; count: number; reason: string; freeSlots: number }
  | { action: 'scale-down'; nodeIds: string[]; reason: string; freeSlots: number };

/** Reference sessions a GPU can still take: limited by render and by encoder room. */
export function freeReferenceSlots(gpu: GpuView, model: GpuModel, slotShare: number): number {
  if (!gpu.eligible || model.encoderPixelRate <= 0) return 0;
  const slotGpu = (slotShare / model.renderCapacity) * fullShare;
  const slotEncoder = (referencePixelRate / model.encoderPixelRate) * fullShare;
  const freeGpu = Math.max(0, gpu.capacity.gpu - gpu.effective.gpu);
  const freeEncoder = Math.max(0, gpu.capacity.encoder - gpu.effective.encoder);
  return Math.floor(Math.min(freeGpu / slotGpu, freeEncoder / slotEncoder));
}

export function nodeFreeSlots(
  node: NodeView,
  config: AutoscalerConfig,
  model: AutoscalerInput['model'],
): number {
  let total = 0;
  for (const gpu of node.gpus) {
    const gpuModel = model(gpu.model);
    if (gpuModel) total += freeReferenceSlots(gpu, gpuModel, config.referenceSlotShare);
  }
  return total;
}

/**
 * The nodes a scale-down may drain: every node outside a Heat group, and from each Heat group only the
 * member Heat removes next (heat-removal-order.ts; members already draining or drained are the ones a
 * pending signal removes first, so they are not in `nodes`). Draining any other member would be
 * wasted: signalled to shrink, Heat deletes its own next victim, sessions and all.
 */
export function scaleDownCandidates(nodes: readonly NodeView[]): NodeView[] {
  const outside: NodeView[] = [];
  const groups = new Map<string, Array<NodeView & { orchestrator: OrchestratorMembership }>>();
  for (const node of nodes) {
    const membership = node.orchestrator;
    if (membership === undefined) {
      outside.push(node);
      continue;
    }
    const key = `${membership.stackId}\u0000${membership.group}`;
    const members = groups.get(key) ?? [];
    members.push({ ...node, orchestrator: membership });
    groups.set(key, members);
  }
  const nextVictims = [...groups.values()].map(
    (members) => heatRemovalOrder(members, (member) => member.orchestrator)[0]!,
  );
  return [...outside, ...nextVictims];
}

const cooling = (last: number | null, now: number, seconds: number) =>
  last !== null && now - last < seconds * 1000;

export function decideScaling(input: AutoscalerInput): AutoscalerDecision {
  const { config, now } = input;
  const active = input.nodes.filter((node) => ['provisioning', 'ready', 'unhealthy'].includes(node.state));
  let freeSlots = 0;
  for (const node of active) {
    // A node still provisioning counts as the capacity it will bring, so one queue spike is not scaled twice.
    freeSlots +=
      node.state === 'provisioning' ? config.nodeReferenceSlots : nodeFreeSlots(node, config, input.model);
  }
  const wanted = config.bufferReferenceSlots + input.queueLength;
  const belowMinimum = config.minNodes - active.length;
  if (freeSlots < wanted || belowMinimum > 0) {
    const room = config.maxNodes - active.length;
    const forSlots = Math.ceil(Math.max(0, wanted - freeSlots) / config.nodeReferenceSlots);
    const count = Math.min(config.maxScaleUpStep, room, Math.max(forSlots, belowMinimum));
    if (count <= 0) return { action: 'hold', reason: `at maxNodes (${config.maxNodes})`, freeSlots };
    if (cooling(input.lastScaleUpAt, now, config.scaleUpCooldownSeconds)) {
      return { action: 'hold', reason: 'scale-up cooldown', freeSlots };
    }
    const why =
      input.queueLength > 0
        ? `${input.queueLength} session(s) queued`
        : belowMinimum > 0
          ? `below minNodes (${config.minNodes})`
          : `${freeSlots} free reference slot(s), buffer is ${config.bufferReferenceSlots}`;
    return { action: 'scale-up', count, reason: why, freeSlots };
  }
  const surplus = freeSlots - config.bufferReferenceSlots;
  if (input.queueLength === 0 && surplus > 0 && active.length > config.minNodes) {
    if (
      cooling(input.lastScaleDownAt, now, config.scaleDownCooldownSeconds) ||
      cooling(input.lastScaleUpAt, now, config.scaleDownCooldownSeconds)
    ) {
      return { action: 'hold', reason: 'scale-down cooldown', freeSlots };
    }
    // One node at a time, and only one whose loss keeps the buffer whole; its sessions end naturally.
    // In a Heat group only the member Heat removes next may go (the signal makes Heat remove that one).
    const candidates = scaleDownCandidates(active);
    const victim = pickDrainVictims(candidates, candidates.length).find((node) => {
      const lost =
        node.state === 'provisioning' ? config.nodeReferenceSlots : nodeFreeSlots(node, config, input.model);
      return lost <= surplus;
    });
    if (victim) {
      return {
        action: 'scale-down',
        nodeIds: [victim.id],
        reason: `${freeSlots} free reference slot(s), buffer is ${config.bufferReferenceSlots}`,
        freeSlots,
      };
    }
  }
  return { action: 'hold', reason: 'within buffer', freeSlots };
}
