/**
 * The fleet: nodes joining (registration, telemetry), and leaving by draining — named nodes or a
 * count whose victims the VCA picks — with migration of the remaining sessions at the deadline.
 */
import type { Clock } from '../clock.js';
import type { CatalogIndex } from '../cost/catalog.js';
import { VcaError } from '../errors.js';
import type { NodeRegistration } from '../fleet/render-node.js';
import type { TelemetryReport } from '../fleet/telemetry.js';
import type { EventBus } from '../sessions/events.js';
import type { SessionService } from '../sessions/session-service.js';
import type { NodeView, StateStore } from '../state/state-store.js';
import { pickDrainVictims } from './drain-planner.js';

export interface FleetServiceOptions {
  store: StateStore;
  catalog: CatalogIndex;
  sessions: SessionService;
  clock: Clock;
  events: EventBus;
  defaultDrainDeadlineMs: number;
}

export class FleetService {
  private readonly options: FleetServiceOptions;

  constructor(options: FleetServiceOptions) {
    this.options = options;
  }

  /**
   * Registers nodes, all or none: every GPU model and every re-registration is checked before the
   * first node is added, so a bad entry in a batch leaves the fleet unchanged.
   */
  async registerNodes(
    registrations: readonly NodeRegistration[],
  ): Promise<Array<{ node: NodeView; created: boolean }>> {
    for (const registration of registrations) {
      const models = registration.gpus.flatMap((entry) =>
        Array.from({ length: entry.count }, () => this.options.catalog.model(entry.model).name),
      );
      const existing = await this.options.store.getNode(registration.id);
      if (
        existing &&
        (existing.host !== registration.host ||
          existing.port !== registration.port ||
          existing.protocol !== registration.protocol ||
          existing.gpus.map((gpu) => gpu.model).join() !== models.join())
      ) {
        throw new VcaError(
          'VCA_ERR_NODE_CONFLICT',
          `Node "${registration.id}" is already registered with another host, port, protocol or GPU set; drain and remove it first`,
        );
      }
    }
    const results: Array<{ node: NodeView; created: boolean }> = [];
    for (const registration of registrations) {
      const result = await this.options.store.registerNode(registration, this.options.clock.now());
      if (result.created) this.options.events.emit({ type: 'node-state', node: result.node });
      results.push(result);
    }
    this.options.sessions.requestQueuePass();
    return results;
  }

  async recordTelemetry(nodeId: string, report: TelemetryReport): Promise<NodeView> {
    const { store, clock } = this.options;
    const before = await store.getNode(nodeId);
    if (!before) throw new VcaError('VCA_ERR_NODE_NOT_FOUND', `Node "${nodeId}" is not registered`);
    const node = await store.recordTelemetry(nodeId, report, clock.now());
    if (node.state !== before.state) this.options.events.emit({ type: 'node-state', node });
    this.options.sessions.requestQueuePass();
    return node;
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

  /** Drains `count` nodes chosen by the VCA (least committed first) and reports which. */
  async drainCount(count: number, deadlineMs?: number): Promise<NodeView[]> {
    const victims = pickDrainVictims(await this.options.store.listNodes(), count);
    const drained: NodeView[] = [];
    for (const victim of victims) drained.push(await this.drainNode(victim.id, deadlineMs));
    return drained;
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
