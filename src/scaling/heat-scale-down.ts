/**
 * Heat scale-downs without hooks: Heat removes members itself between `orchestration.autoscaling.start`
 * and `.end` (src/scaling/heat-removal-order.ts says which), so the VCA must drain those members — and
 * only those — on `start`, and forget them on `end`.
 *
 * - `start` with a shrinking adjustment: the new size from the size Heat reports (or the group's
 *   registered size), the victims in Heat's order from the registered membership of that group; their
 *   sessions migrate at once. The start is remembered per group (in the store, so `end` may reach
 *   another instance).
 * - `end` (and `error`, which reports the size left behind): the members gone are the first `size
 *   before - size after` of Heat's order over the members known at `start`; whatever sessions are still
 *   on them migrate, or end as `node-removed` when no other node has room (the VM is gone), and the
 *   nodes are removed. A member `start` drained that Heat kept (its `min_size` held the size up) is
 *   put back to ready.
 *
 * Members the VCA drained ahead of Heat (the autoscaler drains Heat's next victim before it signals)
 * are noted per group with `noteDrainedAhead`, so a later Heat removal counts them although their
 * nodes already left the store. For a group without registered membership Heat's victims cannot be
 * told: `end` drains the count that left, the VCA's own pick, only among that group's nodes.
 */
import type { Clock } from '../clock.js';
import type { NodeState } from '../fleet/node-state.js';
import { isMemberOf, type OrchestratorMembership } from '../fleet/orchestrator-membership.js';
import type { NodeView, StateStore } from '../state/state-store.js';
import { drainVictimStates } from './drain-planner.js';
import { type FleetService, isInGroup } from './fleet-service.js';
import {
  type HeatAdjustmentType,
  heatGroupSize,
  heatNewCapacity,
  heatRemovalOrder,
} from './heat-removal-order.js';

/** A Heat autoscaling notification as this flow reads it. */
export interface HeatResize {
  /** The notification's `groupname`: the group's nested stack id or its name. */
  group: string;
  /** The id of the stack holding the group (the notification's `stack_id` / `stack_identity`). */
  stackId?: string;
  phase: 'start' | 'end' | 'error';
  /** `capacity` on `start`: the size before the resize. */
  before?: number;
  /** `capacity` on `end` (the new size) and `error` (the size the failure left). */
  after?: number;
  adjustment?: number;
  adjustmentType?: HeatAdjustmentType;
}

export interface HeatResizeOutcome {
  /** The group's size before and after, as far as they could be told. */
  before: number | null;
  after: number | null;
  /** The nodes Heat removes (start) or removed (end), in Heat's order. */
  victims: string[];
  /** Nodes put into draining by this step. */
  draining: Array<{ id: string; state: NodeState }>;
  /** Sessions moved to another node, and sessions that waited in the queue instead. */
  migrated: number;
  queued: number;
  /** Nodes removed (end), sessions that could not migrate and ended `node-removed` (end). */
  removed: string[];
  lost: number;
  /** Nodes `start` drained that Heat kept: ready again. */
  restored: string[];
  /** Without membership, a count drain short of nodes in the group. */
  shortfall: number;
  /** Why nothing was done, when nothing was. */
  note: string | null;
}

/** One member as remembered across the resize (its node may leave the store before `end`). */
interface RememberedMember {
  id: string;
  membership: OrchestratorMembership;
}

/** What the store keeps per group between `start` and `end`. */
interface GroupResizeMemory {
  start?: { before: number; after: number; members: RememberedMember[]; victims: string[]; at: number };
  /** Members the VCA drained (and removed) ahead of a Heat removal it asked for. */
  ahead: RememberedMember[];
  /** The last resize that ended: its start, arriving late by another route, must not act again. */
  ended?: { before: number; after: number; at: number };
}

export interface HeatScaleDownOptions {
  store: StateStore;
  fleet: FleetService;
  clock: Clock;
  /** How long a start (and a member drained ahead) is remembered without its end. */
  memoryTtlMs: number;
}

const memoryKey = (group: string) => `heat-group:${group}`;

/**
 * How long after an end a start of the same sizes counts as that resize's late start (routes differ in
 * delay by seconds); later, the same sizes are a new resize (growth events never reach this flow).
 */
const lateStartWindowMs = 5 * 60 * 1000;
const absent = { absent: true } as const;

export class HeatScaleDown {
  private readonly options: HeatScaleDownOptions;

  constructor(options: HeatScaleDownOptions) {
    this.options = options;
  }

  /**
   * The registered nodes of a group, by either name Heat gives it; empty when none carry membership.
   * A member registered with the id of the stack that holds the group (what a member template can
   * know: deploy/heat) and the group's resource name is matched by `stackId` when the notification's
   * `groupname` (the group's nested stack) names no member — provided that stack holds one group only.
   */
  async members(
    group: string,
    stackId?: string,
  ): Promise<Array<NodeView & { orchestrator: OrchestratorMembership }>> {
    const heatNodes = (await this.options.store.listNodes()).filter(
      (node): node is NodeView & { orchestrator: OrchestratorMembership } =>
        node.orchestrator?.kind === 'heat',
    );
    const named = heatNodes.filter((node) => isMemberOf(node.orchestrator, group));
    if (named.length > 0 || stackId === undefined) return named;
    const inStack = heatNodes.filter((node) => node.orchestrator.stackId === stackId);
    const groups = new Set(inStack.map((node) => node.orchestrator.group));
    return groups.size === 1 ? inStack : [];
  }

  async apply(resize: HeatResize): Promise<HeatResizeOutcome> {
    return resize.phase === 'start' ? this.started(resize) : this.ended(resize);
  }

  /**
   * Notes a member the VCA drains before asking Heat to remove one (the autoscaler): Heat will remove
   * it first, so it must count as a member until Heat's `end`, although its node leaves the store
   * once empty. Kept under both names a notification may use for the group.
   */
  async noteDrainedAhead(node: NodeView): Promise<void> {
    const membership = node.orchestrator;
    if (membership === undefined) return;
    for (const group of new Set([membership.group, membership.stackId])) {
      const memory = await this.readMemory(group);
      if (memory.ahead.some((member) => member.id === node.id)) continue;
      memory.ahead.push({ id: node.id, membership });
      await this.writeMemory(group, memory);
    }
  }

  private async started(resize: HeatResize): Promise<HeatResizeOutcome> {
    const outcome = emptyOutcome();
    const memory = await this.readMemory(resize.group);
    const registered = await this.members(resize.group, resize.stackId);
    const members = mergeMembers(
      registered.map((node) => ({ id: node.id, membership: node.orchestrator })),
      memory.ahead,
    );
    const memberships = members.map((member) => member.membership);
    const before =
      resize.before ?? (members.length > 0 ? heatGroupSize(memberships) : await this.groupSize(resize.group));
    outcome.before = before;
    if (resize.adjustment === undefined || resize.adjustmentType === undefined) {
      outcome.note = 'the adjustment or its type is unknown: no member count can be told';
      return outcome;
    }
    const after = heatNewCapacity(before, resize.adjustment, resize.adjustmentType);
    outcome.after = after;
    const ended = memory.ended;
    if (
      ended !== undefined &&
      ended.before === before &&
      ended.after === after &&
      this.options.clock.now() - ended.at < lateStartWindowMs
    ) {
      // The end of this very resize came first (another route, or a slower one): its members are gone.
      outcome.note = 'this resize already ended: its members were removed then';
      return outcome;
    }
    if (after >= before) {
      outcome.note =
        after > before ? 'the group grows: new members register themselves' : 'no change in size';
      return outcome;
    }
    if (members.length === 0) {
      // Nobody registered as a member: Heat's victims cannot be told. Remember the size for `end`.
      memory.start = { before, after, members: [], victims: [], at: this.options.clock.now() };
      await this.writeMemory(resize.group, memory);
      outcome.note = 'no registered node carries membership of this group: the end drains the count';
      return outcome;
    }
    const victims = removedMembers(members, before, after);
    outcome.victims = victims.map((member) => member.id);
    memory.start = {
      before,
      after,
      members,
      victims: outcome.victims,
      at: this.options.clock.now(),
    };
    await this.writeMemory(resize.group, memory);

    const present = new Map(registered.map((node) => [node.id, node]));
    const toDrain = outcome.victims.filter((id) => {
      const state = present.get(id)?.state;
      return state !== undefined && state !== 'drained';
    });
    if (toDrain.length > 0) {
      // Deadline now: Heat deletes the VM within seconds, so nothing waits for sessions to end.
      const drained = await this.options.fleet.drainNodes(toDrain, 0);
      outcome.draining = drained.map((node) => ({ id: node.id, state: node.state }));
      const moved = await this.options.fleet.migrateSessionsNow(
        drained.filter((node) => node.state === 'draining').map((node) => node.id),
      );
      outcome.migrated = moved.migrated;
      outcome.queued = moved.queued;
    }
    return outcome;
  }

  private async ended(resize: HeatResize): Promise<HeatResizeOutcome> {
    const outcome = emptyOutcome();
    const memory = await this.readMemory(resize.group);
    const registered = (await this.members(resize.group, resize.stackId)).map((node) => ({
      id: node.id,
      membership: node.orchestrator,
    }));
    const start = memory.start;
    const members = mergeMembers(start?.members ?? registered, [...registered, ...memory.ahead]);
    const memberships = members.map((member) => member.membership);
    const legacy = members.length === 0;
    // The size before: from the start seen; else undone from a change in capacity (Heat's end carries
    // the new size); else the group's registered size.
    let before = start?.before;
    if (before === undefined && resize.after !== undefined && resize.adjustment !== undefined) {
      if (resize.adjustmentType === 'change_in_capacity') before = resize.after - resize.adjustment;
    }
    before ??= legacy ? await this.groupSize(resize.group) : heatGroupSize(memberships);
    let after = resize.after;
    if (after === undefined && resize.adjustment !== undefined && resize.adjustmentType !== undefined) {
      after = heatNewCapacity(before, resize.adjustment, resize.adjustmentType);
    }
    outcome.before = before;
    outcome.after = after ?? null;
    if (after === undefined) {
      outcome.note = 'the size after the resize is unknown: no member can be told gone';
      return outcome;
    }
    if (legacy) {
      // Without membership the VCA cannot know Heat's victims; it drains as many nodes of this group
      // (and only this group) as left it, its own pick, at the usual deadline.
      const count = Math.max(0, before - after);
      if (count > 0) {
        const nodes = await this.options.fleet.drainCount(count, undefined, resize.group);
        outcome.draining = nodes.map((node) => ({ id: node.id, state: node.state }));
        outcome.shortfall = count - nodes.length;
      }
      outcome.note = 'no registered node carries membership of this group: drained by count';
      delete memory.start;
      if (start === undefined) memory.ended = { before, after, at: this.options.clock.now() };
      else delete memory.ended;
      await this.writeMemory(resize.group, memory);
      return outcome;
    }
    const gone = after < before ? removedMembers(members, before, after) : [];
    outcome.victims = gone.map((member) => member.id);
    const goneIds = new Set(outcome.victims);
    const stillHere = new Set(registered.map((member) => member.id));

    const evacuated = await this.options.fleet.evacuateRemovedNodes(
      outcome.victims.filter((id) => stillHere.has(id)),
    );
    outcome.removed = evacuated.removed;
    outcome.migrated = evacuated.migrated;
    outcome.lost = evacuated.lost;

    for (const id of start?.victims ?? []) {
      if (goneIds.has(id) || !stillHere.has(id)) continue;
      const node = await this.options.store.getNode(id);
      if (node?.state === 'draining') {
        await this.options.fleet.undrainNode(id);
        outcome.restored.push(id);
      }
    }

    delete memory.start;
    memory.ahead = memory.ahead.filter((member) => !goneIds.has(member.id));
    if (start === undefined) memory.ended = { before, after, at: this.options.clock.now() };
    else delete memory.ended;
    await this.writeMemory(resize.group, memory);
    return outcome;
  }

  /** A group's size as registered without membership: its nodes that are not leaving. */
  private async groupSize(group: string): Promise<number> {
    return (await this.options.store.listNodes()).filter(
      (node) => isInGroup(node, group) && drainVictimStates.includes(node.state),
    ).length;
  }

  private async readMemory(group: string): Promise<GroupResizeMemory> {
    const { store, clock, memoryTtlMs } = this.options;
    const key = memoryKey(group);
    const read = await store.rememberWebhook(key, absent, memoryTtlMs, clock.now());
    if (read.first) {
      // Nothing was remembered: the claim that found out must not stand for a memory.
      await store.forgetWebhook(key);
      return { ahead: [] };
    }
    const value = read.result as GroupResizeMemory | typeof absent;
    if (value === null || typeof value !== 'object' || 'absent' in value) return { ahead: [] };
    return { ...value, ahead: value.ahead ?? [] };
  }

  private async writeMemory(group: string, memory: GroupResizeMemory): Promise<void> {
    const { store, clock, memoryTtlMs } = this.options;
    if (memory.start === undefined && memory.ahead.length === 0 && memory.ended === undefined) {
      await store.forgetWebhook(memoryKey(group));
      return;
    }
    await store.settleWebhook(memoryKey(group), memory, memoryTtlMs, clock.now());
  }
}

/** `first`, then those of `more` it lacks (by node id). */
function mergeMembers(
  first: readonly RememberedMember[],
  more: readonly RememberedMember[],
): RememberedMember[] {
  const merged = [...first];
  const known = new Set(first.map((member) => member.id));
  for (const member of more) {
    if (known.has(member.id)) continue;
    known.add(member.id);
    merged.push(member);
  }
  return merged;
}

/**
 * The members a resize from `before` to `after` removes. Heat removes `all members - after`, FAILED
 * ones included, and `before` (its own count) excludes FAILED members; so the count is `before +
 * failed - after`, taken from the front of Heat's order over the members the VCA knows. Counting from
 * Heat's size rather than the registered one keeps the victims right when a newest member has not
 * registered yet.
 */
function removedMembers(
  members: readonly RememberedMember[],
  before: number,
  after: number,
): RememberedMember[] {
  const failed = members.filter((member) => member.membership.failed === true).length;
  const count = Math.max(0, before + failed - after);
  return heatRemovalOrder(members, (member) => member.membership).slice(0, count);
}

function emptyOutcome(): HeatResizeOutcome {
  return {
    before: null,
    after: null,
    victims: [],
    draining: [],
    migrated: 0,
    queued: 0,
    removed: [],
    lost: 0,
    restored: [],
    shortfall: 0,
    note: null,
  };
}
