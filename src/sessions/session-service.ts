/**
 * Session flows on top of a store: request (assign, queue or refuse), heartbeat, end, migration, and
 * the periodic work that keeps leases and the queue honest (expiry, stale telemetry, re-placing queued
 * sessions as soon as capacity appears). Emits domain events; knows nothing of HTTP or Redis.
 */
import type { Clock, IdSource } from '../clock.js';
import type { CatalogIndex } from '../cost/catalog.js';
import type { LoadVector } from '../cost/session-cost.js';
import { VcaError } from '../errors.js';
import type { Headroom } from '../fleet/gpu-slot.js';
import type { PlacementStrategy } from '../placement/strategy.js';
import type { NodeView, SessionEnd, StateStore } from '../state/state-store.js';
import type { LearnedCostSource } from './cost-learning.js';
import type { EventBus } from './events.js';
import { type EndReason, mayActOn, type SessionRecord, type SessionTransport } from './session.js';
import { buildSessionSpec, type SessionAsk } from './session-request.js';

export interface SessionPolicy {
  strategy: PlacementStrategy;
  headroom: Headroom;
  priorityClasses: readonly string[];
  defaultPriority: string;
  maxQueueLength: number;
  queueTimeoutMs: number;
  /** Lease of a REST session, renewed by heartbeats. */
  restLeaseMs: number;
  /** Lease of a WebSocket session, renewed while its socket is open; the resume grace after a drop. */
  websocketLeaseMs: number;
  /** Most live (queued or assigned) sessions of one gamer (sessions with an owner); absent: no limit. */
  maxSessionsPerGamer?: number;
}

export interface SessionServiceOptions {
  store: StateStore;
  catalog: CatalogIndex;
  policy: SessionPolicy;
  clock: Clock;
  ids: IdSource;
  events: EventBus;
  /** Runs `task` soon, after the current I/O callback (coalesces queue passes). */
  schedule?: (task: () => void) => void;
  onBackgroundError?: (error: unknown) => void;
  /** Learned cost ratios new sessions are priced with (src/sessions/cost-learning.ts). */
  learnedCosts?: LearnedCostSource;
}

export type RequestOutcome =
  | { kind: 'assigned'; session: SessionRecord }
  | { kind: 'queued'; session: SessionRecord; position: number };

export class SessionService {
  private readonly options: SessionServiceOptions;
  private queuePassScheduled = false;
  private queuePassRunning: Promise<void> | null = null;
  private queuePassAgain = false;
  private lastPositionsEmpty = false;
  private readonly costCache = new Map<string, Readonly<Record<string, LoadVector>>>();
  /** The learned-cost version the cache was filled under. */
  private costCacheVersion = 0;

  constructor(options: SessionServiceOptions) {
    this.options = options;
  }

  get policy(): SessionPolicy {
    return this.options.policy;
  }

  leaseMs(transport: SessionTransport): number {
    return transport === 'rest' ? this.options.policy.restLeaseMs : this.options.policy.websocketLeaseMs;
  }

  /**
   * Places a new session, or queues it; refusals throw VCA_ERR_NO_CAPACITY / VCA_ERR_QUEUE_FULL, and
   * VCA_ERR_GAMER_SESSION_LIMIT when `owner` (the gamer asking; null for a front-end) already holds
   * `maxSessionsPerGamer` live sessions.
   */
  async request(
    ask: SessionAsk,
    transport: SessionTransport,
    wait: boolean,
    owner: string | null = null,
  ): Promise<RequestOutcome> {
    const { store, policy, clock, ids, learnedCosts } = this.options;
    if (learnedCosts && learnedCosts.version !== this.costCacheVersion) {
      this.costCache.clear();
      this.costCacheVersion = learnedCosts.version;
    }
    const spec = buildSessionSpec(
      ask,
      ids(),
      transport,
      {
        catalog: this.options.catalog,
        headroom: policy.headroom,
        priorityClasses: policy.priorityClasses,
        defaultPriority: policy.defaultPriority,
        costCache: this.costCache,
        ...(learnedCosts ? { learned: learnedCosts } : {}),
      },
      owner,
    );
    // Capacity freed since the last queue pass belongs to the queue first (FIFO): run a pending pass
    // before placing, or a newcomer takes what a queued session was due.
    if (this.queuePassScheduled || this.queuePassRunning) await this.runQueuePass();
    const now = clock.now();
    const outcome = await store.createSession(spec, {
      now,
      strategy: policy.strategy,
      waitMode: wait ? 'wait' : 'no-wait',
      maxQueueLength: policy.maxQueueLength,
      leaseExpiresAt: now + this.leaseMs(transport),
      queueDeadline: now + policy.queueTimeoutMs,
      maxOwnerSessions: policy.maxSessionsPerGamer,
    });
    switch (outcome.kind) {
      case 'assigned':
        this.options.events.emit({ type: 'session-assigned', session: outcome.session, via: 'request' });
        return outcome;
      case 'queued':
        this.options.events.emit({
          type: 'session-queued',
          session: outcome.session,
          position: outcome.position,
        });
        return outcome;
      case 'refused':
        if (outcome.reason === 'owner-limit') {
          throw new VcaError(
            'VCA_ERR_GAMER_SESSION_LIMIT',
            `This gamer already holds ${policy.maxSessionsPerGamer} live session(s), the most allowed; end one (DELETE /v1/sessions/:id) before asking for another`,
          );
        }
        throw outcome.reason === 'queue-full'
          ? new VcaError(
              'VCA_ERR_QUEUE_FULL',
              'Every rendering node is busy and the queue is full; retry later',
              {
                retryAfterSeconds: 30,
              },
            )
          : new VcaError('VCA_ERR_NO_CAPACITY', 'No rendering node can take this session now; retry later', {
              retryAfterSeconds: 10,
            });
    }
  }

  /**
   * The session, as `gamer` may see it: another gamer's session is answered exactly as an unknown one
   * (VCA_ERR_SESSION_NOT_FOUND), so its existence is not revealed. `gamer` null: a front-end, any session.
   */
  async get(id: string, gamer: string | null = null): Promise<SessionRecord> {
    const session = await this.options.store.getSession(id);
    if (!session || !mayActOn(gamer, session))
      throw new VcaError('VCA_ERR_SESSION_NOT_FOUND', `Session "${id}" does not exist or ended long ago`);
    return session;
  }

  /** Renews a session's lease (REST heartbeat). Ended sessions answer VCA_ERR_SESSION_ENDED. */
  async heartbeat(id: string, gamer: string | null = null): Promise<SessionRecord> {
    const session = await this.get(id, gamer);
    if (session.state === 'ended') {
      throw new VcaError('VCA_ERR_SESSION_ENDED', `Session "${id}" ended (${session.endReason})`, {
        endReason: session.endReason,
      });
    }
    const leaseExpiresAt = this.options.clock.now() + this.leaseMs(session.transport);
    await this.options.store.renewLeases([id], leaseExpiresAt);
    return { ...session, leaseExpiresAt: Math.max(session.leaseExpiresAt, leaseExpiresAt) };
  }

  /** Keeps the leases of sessions whose WebSocket is open. */
  async renewLeases(ids: readonly string[], transport: SessionTransport): Promise<number> {
    if (ids.length === 0) return 0;
    return this.options.store.renewLeases(ids, this.options.clock.now() + this.leaseMs(transport));
  }

  /**
   * Ends a session exactly once; a second call returns undefined and changes nothing, as does a call by
   * a `gamer` the session does not belong to (null: a front-end, which may end any session).
   */
  async end(id: string, reason: EndReason, gamer: string | null = null): Promise<SessionRecord | undefined> {
    if (gamer !== null) {
      // The owner never changes, so the session read here is still the gamer's when it is ended below.
      const session = await this.options.store.getSession(id);
      if (!session || !mayActOn(gamer, session)) return undefined;
    }
    const ended = await this.options.store.endSession(id, reason, this.options.clock.now());
    if (!ended) return undefined;
    await this.afterEnd(ended);
    if (ended.queueWaiting) this.requestQueuePass();
    return ended.session;
  }

  /** Moves a session off its node (drain deadline); it is re-placed or waits at the front of the queue. */
  async migrate(id: string): Promise<SessionRecord | undefined> {
    const { store, policy, clock, events } = this.options;
    const now = clock.now();
    const current = await store.getSession(id);
    if (!current) return undefined;
    const outcome = await store.migrateSession(
      id,
      now,
      policy.strategy,
      now + this.leaseMs(current.transport),
      now + policy.queueTimeoutMs,
    );
    if (!outcome?.from) return undefined;
    events.emit({ type: 'session-migrating', session: outcome.session, from: outcome.from });
    if (outcome.session.state === 'assigned') {
      events.emit({ type: 'session-assigned', session: outcome.session, via: 'migration' });
    } else {
      const positions = await store.queuePositions();
      events.emit({ type: 'session-queued', session: outcome.session, position: positions.get(id) ?? 1 });
    }
    if (outcome.drainedNode) await this.finishDrain(outcome.drainedNode);
    return outcome.session;
  }

  /** Periodic work: stale telemetry, expired leases and queue waits, then a queue pass. */
  async tick(): Promise<void> {
    const { store, clock } = this.options;
    const now = clock.now();
    await store.sweepStale(now);
    const ended = await store.expireSessions(now);
    for (const end of ended) await this.afterEnd(end);
    await this.runQueuePass();
  }

  /** Asks for a queue pass soon; many requests before it runs make one pass. */
  requestQueuePass(): void {
    if (this.queuePassScheduled) return;
    this.queuePassScheduled = true;
    const schedule = this.options.schedule ?? ((task: () => void) => setImmediate(task));
    schedule(() => {
      this.queuePassScheduled = false;
      this.runQueuePass().catch((error) => this.options.onBackgroundError?.(error));
    });
  }

  /** Places whatever queued sessions now fit, in queue order, and publishes new positions. */
  async runQueuePass(): Promise<void> {
    if (this.queuePassRunning) {
      this.queuePassAgain = true;
      return this.queuePassRunning;
    }
    const pass = async () => {
      do {
        this.queuePassAgain = false;
        const { store, policy, clock, events } = this.options;
        const now = clock.now();
        const placed = await store.placeQueued(now, policy.strategy, {
          rest: policy.restLeaseMs,
          websocket: policy.websocketLeaseMs,
        });
        for (const session of placed) events.emit({ type: 'session-assigned', session, via: 'queue' });
        const positions = await store.queuePositions();
        // An empty queue announced again tells nobody anything (every tick runs a pass).
        const empty = positions.size === 0;
        if (!(empty && this.lastPositionsEmpty)) events.emit({ type: 'queue-positions', positions });
        this.lastPositionsEmpty = empty;
      } while (this.queuePassAgain);
    };
    this.queuePassRunning = pass().finally(() => {
      this.queuePassRunning = null;
    });
    return this.queuePassRunning;
  }

  /** A draining node that became empty: report it drained, then remove it. */
  async finishDrain(node: NodeView): Promise<void> {
    const { store, clock, events } = this.options;
    events.emit({ type: 'node-drained', node });
    const removed = await store.removeNode(node.id, clock.now());
    if (removed) events.emit({ type: 'node-removed', node: removed });
  }

  private async afterEnd(end: SessionEnd): Promise<void> {
    this.options.events.emit({ type: 'session-ended', session: end.session });
    if (end.drainedNode) await this.finishDrain(end.drainedNode);
  }
}
