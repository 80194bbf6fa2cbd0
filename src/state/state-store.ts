/**
 * The store interface: every piece of shared state (nodes, GPU load, sessions, leases, the queue,
 * webhook idempotency, the callback outbox) behind async operations that are each atomic. The embedded
 * store implements it in-process; the Redis store implements the same contract with one Lua script
 * per operation, so several gateway instances can share one cluster. Contract tests in test/store run against both.
 */

import type { LoadVector } from '../cost/session-cost.js';
import type { NodeState } from '../fleet/node-state.js';
import type { OrchestratorMembership } from '../fleet/orchestrator-membership.js';
import type { NodeRegistration } from '../fleet/render-node.js';
import type { TelemetryReport } from '../fleet/telemetry.js';
import type { PlacementStrategy } from '../placement/strategy.js';
import type { EndReason, SessionRecord, SessionSpec, SessionTransport } from '../sessions/session.js';

export interface GpuView {
  index: number;
  model: string;
  uuid: string | null;
  name: string | null;
  eligible: boolean;
  stale: boolean;
  telemetryAt: number | null;
  temperatureCelsius: number | null;
  throttleActive: boolean;
  memoryTotalMiB: number;
  committed: LoadVector;
  measured: {
    gpu: number | null;
    encoder: number | null;
    vramMiB: number | null;
    encoderSessions: number | null;
  };
  /** Costs of the sessions placed after the last sample (less the settle time): not measured yet. */
  pending: LoadVector;
  /** VRAM the GPU keeps for itself (idle measurement, at least the model's floor), counted as committed. */
  reservedVramMiB: number;
  /** The time the last sample describes (src/fleet/effective-load.ts sampleReference); null before one. */
  sampledAt: number | null;
  /** max(committed, measured + pending) per dimension (VRAM: committed + reserve). */
  effective: LoadVector;
  capacity: LoadVector;
  sessions: number;
}

export interface NodeView {
  id: string;
  host: string;
  port: number;
  protocol: string;
  group: string | null;
  /** The orchestrator membership the node registered with; absent when it registered none. */
  orchestrator?: OrchestratorMembership;
  labels: Record<string, string>;
  state: NodeState;
  stateChangedAt: number;
  registeredAt: number;
  drainDeadline: number | null;
  sessions: number;
  encoderSessionLimit: number | null;
  gpus: GpuView[];
}

/**
 * One GPU as a telemetry report leaves it: what the report's answer and the cost learner read (a part
 * of GpuView, so a GpuView is one too).
 */
export interface TelemetryGpu {
  index: number;
  model: string;
  eligible: boolean;
  stale: boolean;
  throttleActive: boolean;
  memoryTotalMiB: number;
  measured: GpuView['measured'];
  reservedVramMiB: number;
  pending: Pick<LoadVector, 'encoderSessions'>;
}

/** What `reportTelemetry` answers: the node's state and GPUs after the report, no more. */
export interface TelemetryOutcome {
  /** The node's id. */
  id: string;
  state: NodeState;
  stateChangedAt: number;
  gpus: TelemetryGpu[];
  /** The whole node, when the report moved it (to ready): what the node-state event carries. */
  movedNode: NodeView | null;
  /** The live sessions on the node, as sessionsOnNode answers, when asked for; else null. */
  sessions: SessionRecord[] | null;
  /**
   * Sessions wait in the queue, as of this step: only then can a queue pass place anything on what the
   * report freed (a session queued after this step was refused with the report already applied).
   */
  queueWaiting: boolean;
}

export interface ReportTelemetryOptions {
  /** Answer the live sessions on the node too (in the same step: one round trip on Redis). */
  sessions?: boolean;
}

export interface CreateSessionOptions {
  now: number;
  strategy: PlacementStrategy;
  /** `no-wait`: refuse instead of queueing when nothing fits. */
  waitMode: 'wait' | 'no-wait';
  maxQueueLength: number;
  leaseExpiresAt: number;
  queueDeadline: number;
  /**
   * Most live (queued or assigned) sessions one owner may hold: a session with an owner (`spec.owner`)
   * is refused with `owner-limit` when its owner already holds this many, checked in the same atomic
   * step that creates it. Absent: no limit.
   */
  maxOwnerSessions?: number;
}

export type CreateSessionOutcome =
  | { kind: 'assigned'; session: SessionRecord }
  | { kind: 'queued'; session: SessionRecord; position: number }
  | { kind: 'refused'; reason: 'no-capacity' | 'queue-full' | 'owner-limit' };

/** A session that ended, and the node that its end left empty while draining, if any. */
export interface SessionEnd {
  session: SessionRecord;
  drainedNode: NodeView | null;
  /** Sessions are waiting in the queue: the capacity just freed may place one (else no pass is needed). */
  queueWaiting: boolean;
}

export interface MigrateOutcome {
  session: SessionRecord;
  from: SessionRecord['placement'];
  drainedNode: NodeView | null;
}

export interface AuditReport {
  /** Per GPU: committed load, and the sum of the costs of live sessions placed there. */
  gpus: Array<{
    nodeId: string;
    index: number;
    committed: LoadVector;
    sumOfSessions: LoadVector;
    sessions: number;
  }>;
  liveSessions: number;
  queuedSessions: number;
}

export interface WebhookMemory {
  first: boolean;
  result: unknown;
}

/** The drained node as its drain-complete callback names it. */
export interface DrainedNodeRef {
  id: string;
  host: string;
  group: string | null;
}

/**
 * A callback the orchestrator must get, written by the store in the same atomic operation as the
 * change it reports (a node becoming drained), so it outlives the gateway instance that made the
 * change: whichever instance is alive claims and delivers it (src/hooks/callback-outbox.ts).
 */
export interface OutboxEntry {
  /**
   * `node-drained:<node id>:<registeredAt>`: one per drained node (drained is final until removal),
   * the same on every delivery attempt, so receivers can use it as an idempotency key.
   */
  id: string;
  kind: 'node-drained';
  node: DrainedNodeRef;
  createdAt: number;
  /** When the entry may be claimed (again); a claim moves it to the end of the claim's lease. */
  dueAt: number;
  /** Claims so far, the current one included; a claim's token for `retryOutbox`. */
  attempts: number;
  /** Why the last attempt failed; null before any failure. */
  lastError: string | null;
}

export interface DrainNodesOptions {
  /**
   * The states each node must still be in (a count drain's victims, picked from an earlier read that
   * another instance may have overtaken); without it any state that may move to draining, or draining.
   */
  onlyFrom?: readonly NodeState[];
}

/**
 * Readers that read the whole fleet on their own schedule (/metrics, the region directory) wait at
 * least this many times their last read's duration before the next: reading then costs them at most
 * ~2 % of the time, however large the fleet.
 */
export const fleetReadPacing = 50;

export interface StateStore {
  readonly kind: 'embedded' | 'redis';

  registerNode(registration: NodeRegistration, now: number): Promise<{ node: NodeView; created: boolean }>;
  /**
   * Registers a batch in one step, all or none: every entry is checked first (GPU models known, a live
   * id re-registered only with its own definition, an id listed twice only with one definition), and
   * a refusal (VCA_ERR_UNKNOWN_GPU_MODEL, VCA_ERR_NODE_CONFLICT, with `extra.nodeId`) changes nothing.
   * Answers one entry per registration, in order (`created: false` for a node already known).
   */
  registerNodes(
    registrations: readonly NodeRegistration[],
    now: number,
  ): Promise<Array<{ node: NodeView; created: boolean }>>;
  getNode(id: string): Promise<NodeView | undefined>;
  /** Every node: a read of the whole fleet (seconds at 10,000 nodes on Redis; see `fleetReadPacing`). */
  listNodes(): Promise<NodeView[]>;
  /** Moves a node along its lifecycle; draining takes a deadline. Draining an empty node drains it at once. */
  setNodeState(id: string, to: NodeState, now: number, drainDeadline?: number): Promise<NodeView>;
  /**
   * Starts draining every node of `ids` (a repeated id counts once) in one step, all or none: each
   * must exist (else VCA_ERR_NODE_NOT_FOUND) and may move to draining, and with `onlyFrom` must still
   * be in one of those states (else VCA_ERR_NODE_STATE; both with `extra.nodeId`), checked before the
   * first one changes, so a node that another instance drained or removed meanwhile refuses the whole
   * step. A node already draining gets the new deadline; an empty one drains at once (its callback in
   * the outbox, as setNodeState). Answers the nodes in the order of `ids`.
   */
  drainNodes(
    ids: readonly string[],
    now: number,
    drainDeadline: number,
    options?: DrainNodesOptions,
  ): Promise<NodeView[]>;
  recordTelemetry(nodeId: string, report: TelemetryReport, now: number): Promise<NodeView>;
  /**
   * recordTelemetry with a brief answer (the telemetry route's and the cost learner's): the same change,
   * and with `sessions` the live sessions on the node read in the same step. The Redis store answers
   * a report that changes nothing but the samples without reading the GPUs (scripts/lib/telemetry.lua).
   */
  reportTelemetry(
    nodeId: string,
    report: TelemetryReport,
    now: number,
    options?: ReportTelemetryOptions,
  ): Promise<TelemetryOutcome>;
  /** Makes GPUs with old telemetry ineligible. */
  sweepStale(now: number): Promise<void>;

  /** Atomic pick-and-reserve, or queue, or refuse. */
  createSession(spec: SessionSpec, options: CreateSessionOptions): Promise<CreateSessionOutcome>;
  /**
   * Places queued sessions, in queue order, wherever they now fit; each placed session's lease starts
   * anew with the length for its transport. Returns the ones placed.
   */
  placeQueued(
    now: number,
    strategy: PlacementStrategy,
    leaseMs: Readonly<Record<SessionTransport, number>>,
  ): Promise<SessionRecord[]>;
  /**
   * Moves an assigned session off its node (drain deadline): reserves a new GPU elsewhere and releases
   * the old one in one step, or puts the session at the front of the queue when nothing fits.
   */
  migrateSession(
    id: string,
    now: number,
    strategy: PlacementStrategy,
    leaseExpiresAt: number,
    queueDeadline: number,
  ): Promise<MigrateOutcome | undefined>;
  /**
   * Ends a live session exactly once; undefined when it is unknown or already ended. A queued session
   * ended as `released` is recorded as `cancelled` (it never held a GPU).
   */
  endSession(id: string, reason: EndReason, now: number): Promise<SessionEnd | undefined>;
  /** Extends leases of live sessions; returns how many were live. */
  renewLeases(ids: readonly string[], leaseExpiresAt: number): Promise<number>;
  /** Ends every session whose lease or queue wait ran out, each exactly once. */
  expireSessions(now: number): Promise<SessionEnd[]>;
  /** A live session, or an ended one for a short while after it ended. */
  getSession(id: string): Promise<SessionRecord | undefined>;
  drainingNodes(): Promise<NodeView[]>;
  sessionsOnNode(nodeId: string): Promise<SessionRecord[]>;
  queuePositions(): Promise<ReadonlyMap<string, number>>;
  /**
   * The learned-cost evidence (src/cost/cost-learner.ts: sums by key): adds each increment to its sum
   * in one atomic step and answers every sum, so gateway instances sharing the store learn together.
   * An empty map only reads.
   */
  mergeCostEvidence(increments: ReadonlyMap<string, number>): Promise<Map<string, number>>;
  /** Deletes every sum whose key names `game` (an operator's reset); answers how many went. */
  resetCostEvidence(game: string): Promise<number>;
  /** Removes a node; its live sessions must have been migrated or ended before. */
  removeNode(id: string, now: number): Promise<NodeView | undefined>;

  /**
   * Claims a webhook delivery key with `result` unless it is already known; a replay gets the result
   * stored first (or settled since) back with `first: false`.
   */
  rememberWebhook(key: string, result: unknown, ttlMs: number, now: number): Promise<WebhookMemory>;
  /** Replaces the result remembered for a claimed delivery key (once its processing finished). */
  settleWebhook(key: string, result: unknown, ttlMs: number, now: number): Promise<void>;
  /** Drops a delivery key, claimed or settled, so the next delivery under it is applied afresh. */
  forgetWebhook(key: string): Promise<void>;

  /**
   * The callback outbox. A node's transition to drained (setNodeState on an empty node, or the end,
   * expiry or migration of its last session) writes one `node-drained` entry due at once, in the same
   * operation. `claimOutbox` takes up to `limit` entries due at `now`, earliest due first: each one's
   * attempts go up by one and its due time moves to `now + leaseMs`, so no other claimer gets it until
   * that lease runs out (the entries of a claimer that dies come back then).
   */
  claimOutbox(now: number, leaseMs: number, limit: number): Promise<OutboxEntry[]>;
  /** Removes an entry (delivered, or given up); false when it is already gone. */
  completeOutbox(id: string): Promise<boolean>;
  /**
   * Makes a claimed entry due again at `dueAt`, recording why the attempt failed; false, changing
   * nothing, when the entry is gone or was claimed again since (its attempts are no longer `attempts`).
   */
  retryOutbox(id: string, attempts: number, dueAt: number, detail: string): Promise<boolean>;
  /** Entries not yet delivered or given up, claimed or not. */
  outboxLength(): Promise<number>;
  /** Committed load against the sum of live session costs, for the invariant checks. */
  audit(): Promise<AuditReport>;
  /** Resolves when the store answers; rejects (VCA_ERR_STORE_UNAVAILABLE) when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
