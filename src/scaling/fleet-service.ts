/**
 * The fleet: nodes joining (registration, telemetry), and leaving by draining — named nodes or a
 * count whose victims the VCA picks — with migration of the remaining sessions at the deadline.
 */
import type { Clock } from '../clock.js';
import type { CatalogIndex } from '../cost/catalog.js';
import { isVcaError, VcaError } from '../errors.js';
import { isMemberOf } from '../fleet/orchestrator-membership.js';
import type { NodeRegistration } from '../fleet/render-node.js';
import type { TelemetryReport } from '../fleet/telemetry.js';
import type { CostLearning } from '../sessions/cost-learning.js';
import type { EventBus } from '../sessions/events.js';
import type { SessionRecord } from '../sessions/session.js';
import type { SessionService } from '../sessions/session-service.js';
import type { NodeView, StateStore, TelemetryOutcome } from '../state/state-store.js';
import { drainVictimStates, pickDrainVictims } from './drain-planner.js';

/** A node of `group`: registered with it, or a member of it by orchestrator membership. */
export function isInGroup(node: NodeView, group: string): boolean {
  return node.group === group || isMemberOf(node.orchestrator, group);
}

/** Picks of count-drain victims before giving up, each lost to a change by another caller in between. */
const maxVictimPicks = 5;

export interface FleetServiceOptions {
  store: StateStore;
  catalog: CatalogIndex;
  sessions: SessionService;
  clock: Clock;
  events: EventBus;
  defaultDrainDeadlineMs: number;
  /** Learns title costs from each telemetry report (with the sessions on the node). */
  costs?: CostLearning;
}

export class FleetService {
  private readonly options: FleetServiceOptions;

  constructor(options: FleetServiceOptions) {
    this.options = options;
  }

  /**
   * Registers nodes, all or none, in one store step: every GPU model and every re-registration is
   * checked there before the first node is added, so a bad entry in a batch (or a conflicting
   * registration by another instance a moment earlier) leaves the fleet unchanged.
   */
  async registerNodes(
    registrations: readonly NodeRegistration[],
  ): Promise<Array<{ node: NodeView; created: boolean }>> {
    const results = await this.options.store.registerNodes(registrations, this.options.clock.now());
    for (const result of results) {
      if (result.created) this.options.events.emit({ type: 'node-state', node: result.node });
    }
    this.options.sessions.requestQueuePass();
    return results;
  }

  /** recordTelemetryWithSessions, answering the whole node as it is after the report. */
  async recordTelemetry(nodeId: string, report: TelemetryReport): Promise<NodeView> {
    const { node } = await this.recordTelemetryWithSessions(nodeId, report);
    const view = node.movedNode ?? (await this.options.store.getNode(nodeId));
    if (!view) throw new VcaError('VCA_ERR_NODE_NOT_FOUND', `Node "${nodeId}" is not registered`);
    return view;
  }

  /**
   * Records a report and answers what the telemetry route shows: the node's state and GPUs (brief, not
   * the whole NodeView) and the live sessions placed on it, read in the same store step (one round trip
   * on Redis), which the cost learner takes with the sample.
   */
  async recordTelemetryWithSessions(
    nodeId: string,
    report: TelemetryReport,
  ): Promise<{ node: TelemetryOutcome; sessions: SessionRecord[] }> {
    const { store, clock, costs } = this.options;
    const now = clock.now();
    // The one move a report makes is to ready (from provisioning or unhealthy): the store answers the
    // whole node then. No read of the node before (an unknown node fails in the store).
    const outcome = await store.reportTelemetry(nodeId, report, now, { sessions: true });
    if (outcome.movedNode) this.options.events.emit({ type: 'node-state', node: outcome.movedNode });
    // A pass for every report would be two more store calls per report (10,000 nodes: thousands a
    // second); with nobody queued there is nothing for it to place.
    if (outcome.queueWaiting) this.options.sessions.requestQueuePass();
    const sessions = outcome.sessions ?? [];
    if (costs?.enabled === true) costs.observe(outcome, sessions);
    return { node: outcome, sessions };
  }

  /** Starts draining a node: no new sessions; at the deadline its remaining sessions migrate. */
  async drainNode(id: string, deadlineMs?: number): Promise<NodeView> {
    const { store, clock } = this.options;
    const now = clock.now();
    const node = await store.setNodeState(
      id,
      'draining',
      now,
      now + (deadlineMs ?? this.options.defaultDrainDeadlineMs),
    );
    this.options.events.emit({ type: 'node-state', node });
    if (node.state === 'drained') await this.options.sessions.finishDrain(node);
    return node;
  }

  /**
   * Starts draining every named node in one store step, all or none: an unknown node, or one that can
   * no longer drain, refuses the whole call (VCA_ERR_NODE_NOT_FOUND / VCA_ERR_NODE_STATE with
   * `extra.nodeId`) and nothing changes.
   */
  async drainNodes(ids: readonly string[], deadlineMs?: number): Promise<NodeView[]> {
    const now = this.options.clock.now();
    const nodes = await this.options.store.drainNodes(
      ids,
      now,
      now + (deadlineMs ?? this.options.defaultDrainDeadlineMs),
    );
    await this.announceDrains(nodes);
    return nodes;
  }

  /**
   * Drains `count` nodes chosen by the VCA (least committed first) in one store step and reports
   * which; fewer when the fleet has fewer candidates. The victims are picked from a read and drained
   * only if each is still a candidate, so two scale-downs on two instances never pick the same node
   * and count it twice: the one that loses picks again.
   */
  async drainCount(count: number, deadlineMs?: number, group?: string): Promise<NodeView[]> {
    const { store, clock } = this.options;
    for (let attempt = 1; ; attempt++) {
      const nodes = await store.listNodes();
      // A count is about one group: nodes of another group (or of none) are never its victims.
      const candidates = group === undefined ? nodes : nodes.filter((node) => isInGroup(node, group));
      const victims = pickDrainVictims(candidates, count);
      if (victims.length === 0) return [];
      const now = clock.now();
      try {
        const nodes = await store.drainNodes(
          victims.map((victim) => victim.id),
          now,
          now + (deadlineMs ?? this.options.defaultDrainDeadlineMs),
          { onlyFrom: drainVictimStates },
        );
        await this.announceDrains(nodes);
        return nodes;
      } catch (error) {
        const overtaken =
          isVcaError(error) &&
          (error.code === 'VCA_ERR_NODE_STATE' || error.code === 'VCA_ERR_NODE_NOT_FOUND');
        if (!overtaken || attempt >= maxVictimPicks) throw error;
      }
    }
  }

  /**
   * Migrates every session of the named nodes now, whatever their drain deadline (the orchestrator is
   * deleting them): each is re-placed on another node or waits at the front of the queue.
   */
  async migrateSessionsNow(nodeIds: readonly string[]): Promise<{ migrated: number; queued: number }> {
    const { sessions } = this.options;
    let migrated = 0;
    let queued = 0;
    for (const id of nodeIds) {
      for (const session of await this.sessionsStillOn(id)) {
        const moved = await sessions.migrate(session.id);
        if (moved?.state === 'assigned') migrated++;
        else if (moved?.state === 'queued') queued++;
      }
    }
    return { migrated, queued };
  }

  /**
   * The orchestrator deleted these nodes' machines: their sessions move to another node where one has
   * room, and the rest end as `node-removed` (the machine they ran on is gone; waiting in the queue
   * would only hide that); then the nodes are removed. Answers what happened to each.
   */
  async evacuateRemovedNodes(
    nodeIds: readonly string[],
  ): Promise<{ removed: string[]; migrated: number; lost: number }> {
    const { store, sessions, clock } = this.options;
    const result = { removed: [] as string[], migrated: 0, lost: 0 };
    if (nodeIds.length === 0) return result;
    const present: string[] = [];
    const drainable: string[] = [];
    for (const id of nodeIds) {
      const node = await store.getNode(id);
      if (node === undefined) continue;
      present.push(id);
      if (node.state !== 'drained') drainable.push(id);
    }
    if (drainable.length > 0) {
      const now = clock.now();
      const nodes = await store.drainNodes(drainable, now, now);
      for (const node of nodes) this.options.events.emit({ type: 'node-state', node });
    }
    for (const id of present) {
      for (const session of await this.sessionsStillOn(id)) {
        const moved = await sessions.migrate(session.id);
        if (moved?.state === 'assigned') {
          result.migrated++;
          continue;
        }
        const ended = await sessions.end(session.id, 'node-removed');
        if (ended) result.lost++;
      }
      // Empty now: a node that drained by the steps above was removed there; one that was already
      // drained (or emptied between the reads) is finished here.
      const node = await store.getNode(id);
      if (node?.state === 'drained') await sessions.finishDrain(node);
      if ((await store.getNode(id)) === undefined) result.removed.push(id);
    }
    return result;
  }

  /** The sessions on a node; none once the node is gone (an empty node drains and leaves at once). */
  private async sessionsStillOn(id: string) {
    try {
      return await this.options.store.sessionsOnNode(id);
    } catch (error) {
      if (isVcaError(error) && error.code === 'VCA_ERR_NODE_NOT_FOUND') return [];
      throw error;
    }
  }

  /** After a drain step: tells listeners, and finishes the nodes that were empty (drained at once). */
  private async announceDrains(nodes: readonly NodeView[]): Promise<void> {
    for (const node of nodes) this.options.events.emit({ type: 'node-state', node });
    for (const node of nodes) if (node.state === 'drained') await this.options.sessions.finishDrain(node);
  }

  async undrainNode(id: string): Promise<NodeView> {
    const node = await this.options.store.getNode(id);
    if (!node) throw new VcaError('VCA_ERR_NODE_NOT_FOUND', `Node "${id}" is not registered`);
    if (node.state !== 'draining') {
      throw new VcaError(
        'VCA_ERR_NODE_STATE',
        `Node "${id}" is ${node.state}; only a draining node can be undrained`,
      );
    }
    const ready = await this.options.store.setNodeState(id, 'ready', this.options.clock.now());
    this.options.events.emit({ type: 'node-state', node: ready });
    this.options.sessions.requestQueuePass();
    return ready;
  }

  /** Migrates the sessions of draining nodes whose deadline has passed. */
  async tick(): Promise<void> {
    const { store, clock, sessions } = this.options;
    const now = clock.now();
    for (const node of await store.drainingNodes()) {
      if (node.drainDeadline === null || node.drainDeadline > now) continue;
      for (const session of await store.sessionsOnNode(node.id)) await sessions.migrate(session.id);
    }
  }
}
