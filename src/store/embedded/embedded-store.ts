/**
 * The embedded store: the whole cluster state in this process, zero setup, one gateway instance.
 * Every operation runs to completion synchronously, which is what makes it atomic.
 */

import { evidenceKeyNames } from '../../cost/cost-learner.js';
import { addLoad, type LoadVector, zeroLoad } from '../../cost/session-cost.js';
import { VcaError } from '../../errors.js';
import { FleetState, type FleetStateOptions } from '../../fleet/fleet-state.js';
import { canTransition, type NodeState } from '../../fleet/node-state.js';
import { nodeView, telemetryGpuOf } from '../../fleet/node-view.js';
import type { NodeRegistration } from '../../fleet/render-node.js';
import type { TelemetryReport } from '../../fleet/telemetry.js';
import { type LatencyRules, latencyPlan } from '../../placement/latency-policy.js';
import {
  type PlacementChoice,
  PlacementIndex,
  type PlacementRequest,
} from '../../placement/placement-index.js';
import type { PlacementStrategy } from '../../placement/strategy.js';
import { DeadlineHeap } from '../../sessions/deadline-heap.js';
import type { EndReason, SessionRecord, SessionSpec, SessionTransport } from '../../sessions/session.js';
import { defaultRetainEndedMs, newSessionRecord, sessionDeadline } from '../../sessions/session.js';
import { SessionQueue } from '../../sessions/session-queue.js';
import type {
  AuditReport,
  CreateSessionOptions,
  CreateSessionOutcome,
  DrainNodesOptions,
  MigrateOutcome,
  NodeView,
  ReportTelemetryOptions,
  SessionEnd,
  StateStore,
  TelemetryOutcome,
  WebhookMemory,
} from '../../state/state-store.js';
import { EmbeddedOutbox } from './embedded-outbox.js';

export interface EmbeddedStoreOptions extends FleetStateOptions, LatencyRules {
  priorityClasses: readonly string[];
  /** How long an ended session stays readable (GET answers 410 with its end reason), ms. */
  retainEndedMs?: number;
}

/**
 * What callers get: a copy whose own fields they may change freely. The nested `costs`, `labels` and
 * placement `cost` are frozen when the session is created and shared, never copied per call.
 */
function copySession(session: SessionRecord): SessionRecord {
  // Field by field: one stable object shape, much cheaper for V8 than a spread of 20 fields.
  const placement = session.placement;
  return {
    id: session.id,
    game: session.game,
    width: session.width,
    height: session.height,
    fps: session.fps,
    priority: session.priority,
    transport: session.transport,
    region: session.region,
    labels: session.labels,
    costs: session.costs,
    owner: session.owner,
    latencies: session.latencies,
    state: session.state,
    createdAt: session.createdAt,
    queuedAt: session.queuedAt,
    queueDeadline: session.queueDeadline,
    assignedAt: session.assignedAt,
    endedAt: session.endedAt,
    endReason: session.endReason,
    placement:
      placement === null
        ? null
        : {
            nodeId: placement.nodeId,
            gpuIndex: placement.gpuIndex,
            model: placement.model,
            cost: placement.cost,
          },
    leaseExpiresAt: session.leaseExpiresAt,
    migrations: session.migrations,
  };
}

function frozenCosts(costs: Readonly<Record<string, LoadVector>>): Readonly<Record<string, LoadVector>> {
  if (Object.isFrozen(costs)) return costs;
  const copy: Record<string, LoadVector> = {};
  for (const model in costs) copy[model] = Object.freeze({ ...costs[model]! });
  return Object.freeze(copy);
}

export class EmbeddedStore implements StateStore {
  readonly kind = 'embedded' as const;
  readonly fleet: FleetState;
  readonly index: PlacementIndex;
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly queue: SessionQueue;
  private readonly deadlines = new DeadlineHeap();
  private readonly webhooks = new Map<string, { result: unknown; expiresAt: number }>();
  private readonly webhookExpiry = new DeadlineHeap();
  private readonly outbox = new EmbeddedOutbox();
  /** Learned-cost evidence sums (src/cost/cost-learner.ts). */
  private readonly costEvidence = new Map<string, number>();
  /** Live (queued or assigned) sessions per owner: up at creation, down in `end`, the one way out. */
  private readonly ownerSessions = new Map<string, number>();

  private readonly retainEndedMs: number;
  private readonly latencyRules: LatencyRules;

  constructor(options: EmbeddedStoreOptions) {
    this.retainEndedMs = options.retainEndedMs ?? defaultRetainEndedMs;
    this.latencyRules = {
      latencyPolicies: options.latencyPolicies,
      allowUnreportedRegions: options.allowUnreportedRegions,
    };
    this.fleet = new FleetState(options);
    this.index = new PlacementIndex(options.headroom);
    this.fleet.setListener(this.index);
    this.queue = new SessionQueue(options.priorityClasses);
  }

  private view(id: string): NodeView {
    return nodeView(this.fleet.requireNode(id), this.fleet.options.headroom);
  }

  async registerNode(registration: NodeRegistration, now: number) {
    const { node, created } = this.fleet.register(registration, now);
    return { node: nodeView(node, this.fleet.options.headroom), created };
  }

  async registerNodes(registrations: readonly NodeRegistration[], now: number) {
    // Every entry checked before the first is added: nothing here awaits, so no other call slips in.
    const batch = new Map<string, NodeRegistration>();
    for (const registration of registrations) {
      try {
        this.fleet.checkRegistration(registration, batch.get(registration.id));
      } catch (error) {
        throw namingNode(error, registration.id);
      }
      if (!batch.has(registration.id)) batch.set(registration.id, registration);
    }
    return registrations.map((registration) => {
      const { node, created } = this.fleet.register(registration, now);
      return { node: nodeView(node, this.fleet.options.headroom), created };
    });
  }

  async getNode(id: string) {
    const node = this.fleet.node(id);
    return node ? nodeView(node, this.fleet.options.headroom) : undefined;
  }

  async listNodes() {
    return [...this.fleet.allNodes()].map((node) => nodeView(node, this.fleet.options.headroom));
  }

  async setNodeState(id: string, to: NodeState, now: number, drainDeadline?: number) {
    const node = this.fleet.requireNode(id);
    if (to === 'removed') throw new VcaError('VCA_ERR_NODE_STATE', 'Use removeNode to remove a node');
    if (to === 'drained' && node.sessionCount() > 0) {
      throw new VcaError('VCA_ERR_NODE_STATE', `Node "${id}" still hosts ${node.sessionCount()} session(s)`);
    }
    const wasDrained = node.state === 'drained';
    this.fleet.transition(node, to, now);
    if (to === 'draining') {
      node.drainDeadline = drainDeadline ?? null;
      if (node.sessionCount() === 0) this.fleet.transition(node, 'drained', now);
    }
    // In the same step as the transition: the drain-complete callback outlives this process's memory.
    if (!wasDrained && node.state === 'drained') this.outbox.addNodeDrained(node, now);
    return this.view(id);
  }

  async drainNodes(
    ids: readonly string[],
    now: number,
    drainDeadline: number,
    options: DrainNodesOptions = {},
  ) {
    const unique = [...new Set(ids)];
    const nodes = unique.map((id) => {
      const node = this.fleet.node(id);
      if (!node)
        throw new VcaError('VCA_ERR_NODE_NOT_FOUND', `Node "${id}" is not registered`, { nodeId: id });
      const refusal = drainRefusal(id, node.state, options.onlyFrom);
      if (refusal) throw new VcaError('VCA_ERR_NODE_STATE', refusal, { nodeId: id });
      return node;
    });
    for (const node of nodes) {
      this.fleet.transition(node, 'draining', now);
      node.drainDeadline = drainDeadline;
      if (node.sessionCount() === 0) {
        this.fleet.transition(node, 'drained', now);
        this.outbox.addNodeDrained(node, now);
      }
    }
    return nodes.map((node) => nodeView(node, this.fleet.options.headroom));
  }

  async recordTelemetry(nodeId: string, report: TelemetryReport, now: number) {
    const node = this.fleet.requireNode(nodeId);
    this.fleet.recordTelemetry(node, report, now);
    return this.view(nodeId);
  }

  async reportTelemetry(
    nodeId: string,
    report: TelemetryReport,
    now: number,
    options: ReportTelemetryOptions = {},
  ): Promise<TelemetryOutcome> {
    const node = this.fleet.requireNode(nodeId);
    const before = node.state;
    this.fleet.recordTelemetry(node, report, now);
    // Only a report that moved the node builds its whole view (for the node-state event).
    const movedNode = node.state === before ? null : nodeView(node, this.fleet.options.headroom);
    const gpus = node.gpus.map((gpu) => telemetryGpuOf(gpu, gpu.model.name));
    let sessions: SessionRecord[] | null = null;
    if (options.sessions === true) {
      sessions = [];
      for (const gpu of node.gpus)
        for (const id of gpu.sessionIds) sessions.push(copySession(this.sessions.get(id)!));
    }
    return {
      id: nodeId,
      state: node.state,
      stateChangedAt: node.stateChangedAt,
      gpus,
      movedNode,
      sessions,
      queueWaiting: this.queue.length > 0,
    };
  }

  async sweepStale(now: number) {
    this.fleet.sweepStale(now);
  }

  async createSession(spec: SessionSpec, options: CreateSessionOptions): Promise<CreateSessionOutcome> {
    if (this.sessions.has(spec.id))
      throw new VcaError('VCA_ERR_SESSION_EXISTS', `Session ${spec.id} already exists`);
    // Checked before anything changes, as the Redis store does (the gateway validates it earlier too).
    if (!this.queue.hasClass(spec.priority)) {
      throw new VcaError('VCA_ERR_UNKNOWN_PRIORITY', `Priority class "${spec.priority}" is not configured`);
    }
    // '' is no owner (newSessionRecord; the Redis scripts' session_owner): never counted or limited.
    const owner = spec.owner || null;
    if (
      owner !== null &&
      options.maxOwnerSessions !== undefined &&
      (this.ownerSessions.get(owner) ?? 0) >= options.maxOwnerSessions
    ) {
      return { kind: 'refused', reason: 'owner-limit' };
    }
    this.fleet.sweepStale(options.now);
    const session = newSessionRecord(
      {
        ...spec,
        labels: spec.labels === undefined ? undefined : Object.freeze({ ...spec.labels }),
        latencies: spec.latencies === undefined ? undefined : Object.freeze({ ...spec.latencies }),
        costs: frozenCosts(spec.costs),
      },
      options.now,
      options.leaseExpiresAt,
    );
    if (this.tryPlace(session, options.strategy, options.now, undefined)) {
      this.sessions.set(session.id, session);
      this.deadlines.push(sessionDeadline(session), session.id);
      if (owner !== null) this.ownerSessions.set(owner, (this.ownerSessions.get(owner) ?? 0) + 1);
      return { kind: 'assigned', session: copySession(session) };
    }
    if (options.waitMode === 'no-wait') return { kind: 'refused', reason: 'no-capacity' };
    if (this.queue.length >= options.maxQueueLength) return { kind: 'refused', reason: 'queue-full' };
    session.queuedAt = options.now;
    session.queueDeadline = options.queueDeadline;
    this.sessions.set(session.id, session);
    this.queue.add(session.id, session.priority);
    this.deadlines.push(sessionDeadline(session), session.id);
    if (owner !== null) this.ownerSessions.set(owner, (this.ownerSessions.get(owner) ?? 0) + 1);
    return { kind: 'queued', session: copySession(session), position: this.queue.position(session.id)! };
  }

  async placeQueued(
    now: number,
    strategy: PlacementStrategy,
    leaseMs: Readonly<Record<SessionTransport, number>>,
  ) {
    this.fleet.sweepStale(now);
    const placed: SessionRecord[] = [];
    // A shape that found no GPU in this pass will not find one later in the same pass.
    const failedShapes = new Set<string>();
    for (const id of [...this.queue.inOrder()]) {
      const session = this.sessions.get(id)!;
      const shape = shapeKey(session, now, this.latencyRules);
      if (failedShapes.has(shape)) continue;
      if (this.tryPlace(session, strategy, now, undefined)) {
        this.queue.remove(id);
        session.leaseExpiresAt = now + leaseMs[session.transport];
        session.queueDeadline = null;
        // The lease may now end before the session's queued deadline entry; the heap only re-pushes later.
        this.deadlines.push(sessionDeadline(session), session.id);
        placed.push(copySession(session));
      } else {
        failedShapes.add(shape);
      }
    }
    return placed;
  }

  async migrateSession(
    id: string,
    now: number,
    strategy: PlacementStrategy,
    leaseExpiresAt: number,
    queueDeadline: number,
  ): Promise<MigrateOutcome | undefined> {
    const session = this.sessions.get(id);
    if (session?.state !== 'assigned' || !session.placement) return undefined;
    this.fleet.sweepStale(now);
    const from = session.placement;
    const choice = this.pick(session, strategy, now, from.nodeId);
    this.releasePlacement(session);
    session.migrations++;
    if (choice) {
      this.commitChoice(
        session,
        choice.gpu.node.id,
        choice.gpu.index,
        choice.gpu.model.name,
        choice.cost,
        now,
      );
      session.leaseExpiresAt = leaseExpiresAt;
      // The new lease may end before the old one's heap entry; the heap only re-pushes later deadlines.
      this.deadlines.push(sessionDeadline(session), session.id);
    } else {
      session.state = 'queued';
      session.queuedAt = now;
      session.queueDeadline = queueDeadline;
      this.queue.add(session.id, session.priority, true);
      this.deadlines.push(sessionDeadline(session), session.id);
    }
    return { session: copySession(session), from, drainedNode: this.drainIfEmpty(from.nodeId, now) };
  }

  async endSession(id: string, reason: EndReason, now: number): Promise<SessionEnd | undefined> {
    const session = this.sessions.get(id);
    if (!session || session.state === 'ended') return undefined;
    return this.end(session, reason, now);
  }

  async renewLeases(ids: readonly string[], leaseExpiresAt: number) {
    let renewed = 0;
    for (const id of ids) {
      const session = this.sessions.get(id);
      if (!session || session.state === 'ended') continue;
      // Lazy: the heap entry is corrected when it reaches the top (see DeadlineHeap).
      session.leaseExpiresAt = Math.max(session.leaseExpiresAt, leaseExpiresAt);
      renewed++;
    }
    return renewed;
  }

  async expireSessions(now: number) {
    const ended: SessionEnd[] = [];
    for (;;) {
      const top = this.deadlines.peekTime();
      if (top === undefined || top > now) break;
      const entry = this.deadlines.pop()!;
      const session = this.sessions.get(entry.id);
      if (!session) continue;
      if (session.state === 'ended') {
        if ((session.endedAt ?? 0) + this.retainEndedMs <= now) this.sessions.delete(session.id);
        continue;
      }
      const deadline = sessionDeadline(session);
      // An outdated entry (the lease was renewed or restarted since) goes back at the session's real
      // deadline, even one already past: sessions then end in deadline order, as in the Redis store.
      if (deadline !== entry.time) {
        this.deadlines.push(deadline, session.id);
        continue;
      }
      const reason: EndReason =
        session.state === 'queued' && session.queueDeadline !== null && session.queueDeadline <= now
          ? 'queue-timeout'
          : 'lease-expired';
      ended.push(this.end(session, reason, now));
    }
    this.forgetOldWebhooks(now);
    return ended;
  }

  async getSession(id: string) {
    const session = this.sessions.get(id);
    return session ? copySession(session) : undefined;
  }

  async sessionsOnNode(nodeId: string) {
    const node = this.fleet.requireNode(nodeId);
    const result: SessionRecord[] = [];
    for (const gpu of node.gpus)
      for (const id of gpu.sessionIds) result.push(copySession(this.sessions.get(id)!));
    return result;
  }

  async drainingNodes() {
    const result: NodeView[] = [];
    for (const node of this.fleet.allNodes()) {
      if (node.state === 'draining') result.push(nodeView(node, this.fleet.options.headroom));
    }
    return result;
  }

  async queuePositions() {
    return this.queue.allPositions();
  }

  async mergeCostEvidence(increments: ReadonlyMap<string, number>) {
    for (const [key, value] of increments) {
      if (Number.isFinite(value)) this.costEvidence.set(key, (this.costEvidence.get(key) ?? 0) + value);
    }
    return new Map(this.costEvidence);
  }

  async resetCostEvidence(game: string) {
    let removed = 0;
    for (const key of [...this.costEvidence.keys()]) {
      if (evidenceKeyNames(key, game) && this.costEvidence.delete(key)) removed++;
    }
    return removed;
  }

  async removeNode(id: string, now: number) {
    const node = this.fleet.node(id);
    if (!node) return undefined;
    if (node.sessionCount() > 0) {
      throw new VcaError('VCA_ERR_NODE_STATE', `Node "${id}" still hosts ${node.sessionCount()} session(s)`);
    }
    const view = nodeView(node, this.fleet.options.headroom);
    this.fleet.transition(node, 'removed', now);
    return { ...view, state: 'removed' as const, stateChangedAt: now };
  }

  async rememberWebhook(key: string, result: unknown, ttlMs: number, now: number): Promise<WebhookMemory> {
    const known = this.webhooks.get(key);
    if (known && known.expiresAt > now) return { first: false, result: known.result };
    this.webhooks.set(key, { result, expiresAt: now + ttlMs });
    this.webhookExpiry.push(now + ttlMs, key);
    return { first: true, result };
  }

  async settleWebhook(key: string, result: unknown, ttlMs: number, now: number): Promise<void> {
    this.webhooks.set(key, { result, expiresAt: now + ttlMs });
    this.webhookExpiry.push(now + ttlMs, key);
  }

  async forgetWebhook(key: string): Promise<void> {
    // Its expiry heap entry stays; forgetOldWebhooks skips a key that is gone or claimed again since.
    this.webhooks.delete(key);
  }

  async claimOutbox(now: number, leaseMs: number, limit: number) {
    return this.outbox.claim(now, leaseMs, limit);
  }

  async completeOutbox(id: string) {
    return this.outbox.complete(id);
  }

  async retryOutbox(id: string, attempts: number, dueAt: number, detail: string) {
    return this.outbox.retry(id, attempts, dueAt, detail);
  }

  async outboxLength() {
    return this.outbox.length;
  }

  async audit(): Promise<AuditReport> {
    const gpus: AuditReport['gpus'] = [];
    for (const node of this.fleet.allNodes()) {
      for (const gpu of node.gpus) {
        const sum = zeroLoad();
        for (const id of gpu.sessionIds) addLoad(sum, this.sessions.get(id)!.placement!.cost, 1);
        gpus.push({
          nodeId: node.id,
          index: gpu.index,
          committed: { ...gpu.committed },
          sumOfSessions: sum,
          sessions: gpu.sessionIds.size,
        });
      }
    }
    let live = 0;
    for (const session of this.sessions.values()) if (session.state === 'assigned') live++;
    return { gpus, liveSessions: live, queuedSessions: this.queue.length };
  }

  async ping() {}

  async close() {}

  private placementRequest(session: SessionRecord, strategy: PlacementStrategy, excludeNodeId?: string) {
    const request: PlacementRequest = {
      costs: new Map(Object.entries(session.costs)),
      strategy,
      region: session.region,
      labels: session.labels,
      excludeNodeId,
    };
    return request;
  }

  /**
   * The GPU for a session at `now`: with reported latencies, region by region in the order of its
   * latency plan (then any region, when the plan allows others), each pick as without latencies but
   * limited to that region; all in this one synchronous step. lib/latency.lua does the same.
   */
  private pick(
    session: SessionRecord,
    strategy: PlacementStrategy,
    now: number,
    exclude: string | undefined,
  ): PlacementChoice | undefined {
    const request = this.placementRequest(session, strategy, exclude);
    const plan = latencyPlan(session, now, this.latencyRules);
    if (plan === null) return this.index.pick(request);
    for (const region of plan.regions) {
      // A request that also names a region is limited to it.
      if (session.region !== undefined && region !== session.region) continue;
      request.region = region;
      const choice = this.index.pick(request);
      if (choice) return choice;
    }
    if (!plan.otherRegions) return undefined;
    // The regions tried above have no room, so this finds one the gamer did not report, if any.
    request.region = session.region;
    return this.index.pick(request);
  }

  private tryPlace(
    session: SessionRecord,
    strategy: PlacementStrategy,
    now: number,
    exclude?: string,
  ): boolean {
    const choice = this.pick(session, strategy, now, exclude);
    if (!choice) return false;
    this.commitChoice(session, choice.gpu.node.id, choice.gpu.index, choice.gpu.model.name, choice.cost, now);
    return true;
  }

  private commitChoice(
    session: SessionRecord,
    nodeId: string,
    gpuIndex: number,
    model: string,
    cost: LoadVector,
    now: number,
  ): void {
    const gpu = this.fleet.requireNode(nodeId).gpus[gpuIndex]!;
    this.fleet.commit(gpu, session.id, cost, now);
    session.state = 'assigned';
    session.assignedAt = now;
    session.placement = {
      nodeId,
      gpuIndex,
      model,
      cost: Object.isFrozen(cost) ? cost : Object.freeze({ ...cost }),
    };
  }

  /** Frees the session's GPU reservation; exactly once because the placement is cleared here. */
  private releasePlacement(session: SessionRecord): void {
    const placement = session.placement;
    if (!placement) return;
    session.placement = null;
    const node = this.fleet.node(placement.nodeId);
    const gpu = node?.gpus[placement.gpuIndex];
    if (gpu) this.fleet.uncommit(gpu, session.id, placement.cost);
  }

  private end(session: SessionRecord, reason: EndReason, now: number): SessionEnd {
    const nodeId = session.placement?.nodeId;
    if (session.state === 'queued') this.queue.remove(session.id);
    // Keep the placement on the ended record for callers, but release its reservation.
    const placement = session.placement;
    this.releasePlacement(session);
    session.placement = placement;
    // Leaving the queue is a cancellation: the session never held a GPU.
    session.endReason = session.state === 'queued' && reason === 'released' ? 'cancelled' : reason;
    session.state = 'ended';
    session.endedAt = now;
    if (session.owner !== null) {
      const live = (this.ownerSessions.get(session.owner) ?? 1) - 1;
      if (live > 0) this.ownerSessions.set(session.owner, live);
      else this.ownerSessions.delete(session.owner);
    }
    const ended = copySession(session);
    // Kept for a while so look-ups can say how it ended; then forgotten by expireSessions.
    this.deadlines.push(now + this.retainEndedMs, session.id);
    return {
      session: ended,
      drainedNode: nodeId ? this.drainIfEmpty(nodeId, now) : null,
      queueWaiting: this.queue.length > 0,
    };
  }

  private drainIfEmpty(nodeId: string, now: number): NodeView | null {
    const node = this.fleet.node(nodeId);
    if (node?.state !== 'draining' || node.sessionCount() > 0) return null;
    this.fleet.transition(node, 'drained', now);
    this.outbox.addNodeDrained(node, now);
    return nodeView(node, this.fleet.options.headroom);
  }

  private forgetOldWebhooks(now: number): void {
    for (;;) {
      const top = this.webhookExpiry.peekTime();
      if (top === undefined || top > now) return;
      const { id } = this.webhookExpiry.pop()!;
      const known = this.webhooks.get(id);
      if (known && known.expiresAt <= now) this.webhooks.delete(id);
    }
  }
}

/** The same refusal with the node it is about, so a caller can name that node's entry in its input. */
function namingNode(error: unknown, nodeId: string): unknown {
  return error instanceof VcaError
    ? new VcaError(error.code, error.message, { ...error.extra, nodeId })
    : error;
}

/**
 * Why a node in `state` may not start draining (`onlyFrom`: the states it must still be in), or
 * undefined when it may; a node already draining may, and gets the new deadline. drain-nodes.lua
 * words the same refusals.
 */
function drainRefusal(
  id: string,
  state: NodeState,
  onlyFrom: readonly NodeState[] | undefined,
): string | undefined {
  if (onlyFrom && !onlyFrom.includes(state)) {
    return `Node "${id}" is ${state}, no longer ${onlyFrom.join(' or ')}; nothing was drained`;
  }
  if (state !== 'draining' && !canTransition(state, 'draining')) {
    return `Node "${id}" cannot go from ${state} to draining`;
  }
  return undefined;
}

/** Shape keys of frozen cost tables (the gateway shares one per session format and model restriction). */
const costShapes = new WeakMap<object, string>();

/**
 * Sessions with the same shape compete for exactly the same GPUs: the same cost on the same GPU models
 * (so a restriction to some models is part of it), the same region (none is not ''), the same labels
 * (in name order), and the same latency plan at `now` (its regions in order, and whether others may
 * follow). A queue pass skips the rest of a shape once one of it found no GPU. The Redis store's
 * shape_key (scripts/lib/sessions.lua) and latency_shape (scripts/lib/latency.lua) key on the same.
 */
function shapeKey(session: SessionRecord, now: number, rules: LatencyRules): string {
  let costs = costShapes.get(session.costs);
  if (costs === undefined) {
    costs = '';
    for (const model of Object.keys(session.costs).sort()) {
      const cost = session.costs[model]!;
      costs += `${model}=${cost.gpu},${cost.encoder},${cost.vramMiB},${cost.encoderSessions};`;
    }
    if (Object.isFrozen(session.costs)) costShapes.set(session.costs, costs);
  }
  const region = session.region === undefined ? '' : `:${session.region}`;
  const labels = session.labels
    ? JSON.stringify(
        Object.keys(session.labels)
          .sort()
          .map((name) => [name, session.labels![name]]),
      )
    : '';
  const plan = latencyPlan(session, now, rules);
  const latency = plan === null ? '' : `|${JSON.stringify(plan.regions)}${plan.otherRegions ? '+' : ''}`;
  return `${costs}|${region}|${labels}${latency}`;
}
