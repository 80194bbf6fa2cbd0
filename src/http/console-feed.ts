/**
 * The operator console's live feed: the WebSocket `/v1/console/feed` (messages in
 * `console-protocol.ts`). One poller per gateway instance reads the fleet and the queue from the store
 * every `pollMs` while a signed-in console is connected (every `historySampleMs` otherwise, for the
 * history alone) and pushes only what changed: a node whose view differs from the last poll is marked
 * for every console and sent whole, so a console that fell behind (backpressure) simply gets the
 * latest view later, never a stale one. Domain events, webhooks, callbacks and scale signals become a
 * timeline kept in a ring. A ring of `historySamples` samples per GPU (effective render load) and for
 * the queue length lets a console opened now draw the last 15 minutes.
 *
 * Reading the whole fleet costs in proportion to its size (10,000 nodes on Redis: seconds of the
 * gateway's time and a long script in Redis), so the poller bounds its own cost: the pause after a read
 * is at least the read's duration times `(1 - share) / share`, where share is `maxReadShare`
 * (`watchedReadShare` while a console is connected, `unwatchedReadShare` otherwise). A large fleet is
 * then polled less often than `pollMs`, and history periods that pass without a read are sent as
 * missed samples (null), never as invented values.
 *
 * The token is the first message, never part of the URL; the socket is closed with 4401 when it is
 * not an operator token and 4408 when it does not come in time.
 */
import type { Logger } from 'pino';
import type { AutoscalerConfig } from '../config/schema.js';
import type { CatalogIndex } from '../cost/catalog.js';
import { fullShare } from '../cost/session-cost.js';
import { isVcaError } from '../errors.js';
import { nodeFreeSlots } from '../scaling/autoscaler-policy.js';
import type { VcaEvent } from '../sessions/events.js';
import type { NodeView, StateStore } from '../state/state-store.js';
import {
  type ConsoleEvent,
  type ConsoleEventKind,
  type ConsoleNode,
  type ConsoleServerMessage,
  type ConsoleSummary,
  consoleCloseCodes,
} from './console-protocol.js';
import type { Credentials } from './credentials.js';
import type { WsRoute, WsSession } from './handler-api.js';

export interface ConsoleFeedOptions {
  store: StateStore;
  credentials: Credentials;
  catalog: CatalogIndex;
  autoscalerConfig: AutoscalerConfig;
  /** The autoscaler runner's `view()`. */
  autoscalerView: () => {
    enabled: boolean;
    lastDecision: { action: string; reason: string; freeSlots: number; at: number } | null;
    lastScaleUpAt: number | null;
    lastScaleDownAt: number | null;
    drainingVictims: string[];
  };
  priorityClasses: readonly string[];
  now: () => number;
  logger: Logger;
  /** How often the fleet is read while a console is connected, ms. */
  pollMs?: number;
  /** One history sample every this many ms (default 5 s). */
  historySampleMs?: number;
  /**
   * Keep sampling history while no console is connected (default true): a console opened later draws
   * the last 15 minutes at once, at the price of a read of the whole fleet every historySampleMs.
   */
  historyWithoutViewers?: boolean;
  /** Samples kept (default 180: 15 minutes of 5 s samples). */
  historySamples?: number;
  /** Timeline entries kept for a console that opens later. */
  eventHistory?: number;
  /** How long a new socket may take to send its token, ms. */
  authTimeoutMs?: number;
  /**
   * Most of the wall time the poller may spend reading the store: with consoles connected, and without
   * (history only). Defaults `watchedReadShare` and `unwatchedReadShare`.
   */
  maxReadShare?: { watched: number; unwatched: number };
}

/** Default most share of wall time the poller spends reading while a console is connected. */
export const watchedReadShare = 0.05;
/** ... and while none is (history only): a gateway nobody watches should not pay for watching. */
export const unwatchedReadShare = 0.02;

interface FeedClient {
  session: WsSession<FeedSocket>;
  /** Nodes to send on the next flush; true when the client has never seen the node (send its history). */
  pending: Map<string, boolean>;
  removed: Set<string>;
  known: Set<string>;
  lastEventSeq: number;
  summarySent: string;
}

export interface FeedSocket {
  authenticated: boolean;
  client: FeedClient | undefined;
  authTimer: NodeJS.Timeout | undefined;
}

/** A timeline entry: described at once (webhooks, callbacks...) or from its domain event when first read. */
interface TimelineEntry {
  seq: number;
  at: number;
  described?: ConsoleEvent;
  source?: VcaEvent | undefined;
}

/** Bytes queued for a console above which nothing more is sent to it until it drains. */
const maxBufferedBytes = 256 * 1024;
/** Nodes per `nodes` message. */
const nodesPerMessage = 64;
/** Timeline entries per `events` message. */
const eventsPerMessage = 200;
/** Queued sessions whose records one poll may read (the rest on the next polls). */
const queueReadsPerPoll = 500;
const noSample = 0xff;

function hexSeries(ring: Uint8Array, head: number): string {
  let text = '';
  for (let step = 1; step <= ring.length; step++) {
    const value = ring[(head + step) % ring.length]!;
    text += value < 16 ? `0${value.toString(16)}` : value.toString(16);
  }
  return text;
}

/** Effective render load of a GPU as a whole percentage of the GPU. */
function renderPercent(gpu: NodeView['gpus'][number]): number {
  return Math.max(0, Math.min(100, Math.round((gpu.effective.gpu / fullShare) * 100)));
}

export class ConsoleFeed {
  private readonly options: ConsoleFeedOptions;
  private readonly pollMs: number;
  private readonly historySampleMs: number;
  private readonly historySamples: number;
  private readonly eventHistory: number;
  private readonly clients = new Set<FeedClient>();
  /** The last poll's view of each node, as JSON, to tell what changed. */
  private readonly nodeText = new Map<string, string>();
  private readonly nodes = new Map<string, NodeView>();
  /** Per node, per GPU: the history ring of effective render load. */
  private readonly gpuHistory = new Map<string, Uint8Array[]>();
  private readonly queueHistory: Array<number | null>;
  /** Index of the latest sample in every ring. */
  private historyHead = 0;
  /** When the last sample was taken, on the monotonic clock (the pace is real time, even under a test clock). */
  private lastSampleAt = Number.NEGATIVE_INFINITY;
  /** Queued sessions seen: when each started waiting and its class (neither changes while it waits). */
  private readonly queued = new Map<string, { since: number; priority: string }>();
  private readonly events: TimelineEntry[] = [];
  private readonly signals: ConsoleEvent[] = [];
  private eventSeq = 0;
  private summary: ConsoleSummary | undefined;
  private summaryText = '';
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = true;
  private lastPollFailed = false;
  /** How long the last successful read took (ms, monotonic clock): the pause after it grows with it. */
  private lastReadMs = 0;
  private readonly maxReadShare: { watched: number; unwatched: number };

  constructor(options: ConsoleFeedOptions) {
    this.options = options;
    this.pollMs = options.pollMs ?? 300;
    this.historySampleMs = options.historySampleMs ?? 5000;
    this.historySamples = options.historySamples ?? 180;
    this.eventHistory = options.eventHistory ?? 500;
    this.queueHistory = new Array(this.historySamples).fill(null);
    this.maxReadShare = options.maxReadShare ?? { watched: watchedReadShare, unwatched: unwatchedReadShare };
  }

  /** Starts the poller (history is kept from now on). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const client of this.clients) client.session.close(1001, 'gateway stopping');
    this.clients.clear();
  }

  /** Consoles connected and signed in. */
  get connected(): number {
    return this.clients.size;
  }

  /** The WebSocket route; its upgrade is public: the token comes as the first message. */
  route(): WsRoute<FeedSocket> {
    const authTimeoutMs = this.options.authTimeoutMs ?? 10_000;
    return {
      upgrade: () => ({ authenticated: false, client: undefined, authTimer: undefined }),
      open: (session) => {
        session.data.authTimer = setTimeout(() => {
          if (!session.data.authenticated) session.close(consoleCloseCodes.signInTimeout, 'no token in time');
        }, authTimeoutMs);
        session.data.authTimer.unref();
      },
      message: (session, message) => this.onMessage(session, message),
      close: (session) => {
        if (session.data.authTimer) clearTimeout(session.data.authTimer);
        if (session.data.client) this.clients.delete(session.data.client);
      },
    };
  }

  /**
   * A domain event, local or relayed from another instance, for the timeline. Called for every
   * session event on the allocation path, so it only keeps a reference; the text is written when a
   * console first reads the entry.
   */
  handleEvent(event: VcaEvent): void {
    if (event.type === 'queue-positions' || event.type === 'session-resumed') return;
    this.push({ seq: ++this.eventSeq, at: this.options.now(), source: event });
  }

  /** A timeline entry from outside the domain events: webhooks, callbacks, scale signals, errors. */
  record(
    kind: ConsoleEventKind,
    text: string,
    about: { node?: string | undefined; session?: string | undefined } = {},
  ): void {
    const event: ConsoleEvent = { seq: ++this.eventSeq, at: this.options.now(), kind, text };
    if (about.node !== undefined) event.node = about.node;
    if (about.session !== undefined) event.session = about.session;
    this.push({ seq: event.seq, at: event.at, described: event });
    if (kind === 'signal') {
      this.signals.push(event);
      if (this.signals.length > 10) this.signals.shift();
    }
  }

  private push(entry: TimelineEntry): void {
    this.events.push(entry);
    // Trimmed in halves, so keeping the ring costs O(1) per entry however busy the gateway is.
    if (this.events.length >= 2 * this.eventHistory)
      this.events.splice(0, this.events.length - this.eventHistory);
  }

  /** The entries after `seq` (at most the last `eventHistory`), described. */
  private eventsAfter(seq: number): ConsoleEvent[] {
    const first = Math.max(0, this.events.length - this.eventHistory);
    const found: ConsoleEvent[] = [];
    for (let index = first; index < this.events.length; index++) {
      const entry = this.events[index]!;
      if (entry.seq <= seq) continue;
      entry.described ??= describeEvent(entry.seq, entry.at, entry.source!);
      entry.source = undefined;
      found.push(entry.described);
    }
    return found;
  }

  private onMessage(session: WsSession<FeedSocket>, message: unknown): void {
    if (session.data.authenticated) {
      // The console sends nothing after its token; anything else is answered and ignored.
      session.send({ type: 'error', code: 'VCA_ERR_VALIDATION', detail: 'Only "auth" is understood' });
      return;
    }
    const token =
      typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'auth'
        ? (message as { token?: unknown }).token
        : undefined;
    try {
      if (typeof token !== 'string' || token.length === 0 || token.length > 4096)
        throw new TypeError('the first message must be {"type":"auth","token":"<operator token>"}');
      this.options.credentials.requireRole(
        { headers: { authorization: `Bearer ${token}` }, query: new URLSearchParams() },
        'operator',
      );
    } catch (error) {
      const code = isVcaError(error) ? error.code : 'VCA_ERR_UNAUTHORIZED';
      const detail = isVcaError(error) || error instanceof TypeError ? error.message : 'Sign-in refused';
      this.sendTo(session, { type: 'error', code, detail });
      session.close(consoleCloseCodes.signInRefused, 'sign-in refused');
      return;
    }
    session.data.authenticated = true;
    if (session.data.authTimer) clearTimeout(session.data.authTimer);
    const client: FeedClient = {
      session,
      pending: new Map([...this.nodes.keys()].map((id) => [id, true])),
      removed: new Set(),
      known: new Set(),
      lastEventSeq: 0,
      summarySent: '',
    };
    session.data.client = client;
    this.clients.add(client);
    this.sendTo(session, {
      type: 'hello',
      serverTime: this.options.now(),
      historySampleMs: this.historySampleMs,
      historySamples: this.historySamples,
      queueHistory: this.orderedQueueHistory(),
    });
    this.flush(client);
    // Poll now rather than at the slow (history only) pace the feed ran at without consoles.
    this.schedule(0);
  }

  private sendTo(session: WsSession<FeedSocket>, message: ConsoleServerMessage): boolean {
    return session.send(message);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll();
    }, delayMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    const startedAt = this.options.now();
    const readStart = performance.now();
    try {
      await this.read(startedAt);
      // Only a read that succeeded paces the next: one that waited for a store that is down (up to its
      // command timeout) says nothing of the fleet's size, and the console should see it come back soon.
      this.lastReadMs = performance.now() - readStart;
      if (this.lastPollFailed) this.record('node', 'the console feed reads the store again');
      this.lastPollFailed = false;
    } catch (error) {
      if (!this.lastPollFailed) {
        this.options.logger.warn({ err: error }, 'console feed could not read the store');
        this.record('error', `the console feed could not read the store: ${errorText(error)}`);
      }
      this.lastPollFailed = true;
    } finally {
      this.polling = false;
    }
    for (const client of this.clients) this.flush(client);
    if (this.clients.size > 0) this.schedule(Math.max(this.pollMs, this.pauseAfterRead(true)));
    else if (this.options.historyWithoutViewers !== false)
      this.schedule(
        Math.max(this.lastSampleAt + this.historySampleMs - performance.now(), this.pauseAfterRead(false)),
      );
  }

  /** The least pause after the last read that keeps reading within its share of wall time. */
  private pauseAfterRead(watched: boolean): number {
    const share = watched ? this.maxReadShare.watched : this.maxReadShare.unwatched;
    return (this.lastReadMs * (1 - share)) / share;
  }

  private async read(now: number): Promise<void> {
    const nodes = await this.options.store.listNodes();
    const positions = await this.options.store.queuePositions();
    const seen = new Set<string>();
    // With no console open nothing is sent, so nothing needs telling what changed: the JSON text each
    // node is compared by (most of a read's cost in a large fleet) is dropped, and a console that
    // signs in gets every node anyway.
    const watched = this.clients.size > 0;
    if (!watched) this.nodeText.clear();
    for (const node of nodes) {
      seen.add(node.id);
      const isNew = !this.nodes.has(node.id);
      if (watched) {
        const text = JSON.stringify(node);
        if (this.nodeText.get(node.id) === text) continue;
        this.nodeText.set(node.id, text);
      }
      this.nodes.set(node.id, node);
      for (const client of this.clients) {
        client.removed.delete(node.id);
        client.pending.set(node.id, client.pending.get(node.id) === true || !client.known.has(node.id));
      }
      if (isNew || this.gpuHistory.get(node.id)?.length !== node.gpus.length)
        this.gpuHistory.set(
          node.id,
          node.gpus.map(() => new Uint8Array(this.historySamples).fill(noSample)),
        );
    }
    for (const id of [...this.nodes.keys()]) {
      if (seen.has(id)) continue;
      this.nodes.delete(id);
      this.nodeText.delete(id);
      this.gpuHistory.delete(id);
      for (const client of this.clients) {
        client.pending.delete(id);
        if (client.known.has(id)) client.removed.add(id);
      }
    }
    await this.readQueue(positions, now);
    if (performance.now() - this.lastSampleAt >= this.historySampleMs) this.sample(now, positions.size);
    this.summary = this.summarize(nodes, positions.size, now);
    // Compared without its time stamp: a summary is sent again only when something in it changed.
    this.summaryText = JSON.stringify({ ...this.summary, at: 0 });
  }

  private async readQueue(positions: ReadonlyMap<string, number>, now: number): Promise<void> {
    for (const id of [...this.queued.keys()]) if (!positions.has(id)) this.queued.delete(id);
    let reads = 0;
    for (const id of positions.keys()) {
      if (this.queued.has(id)) continue;
      if (reads++ >= queueReadsPerPoll) break;
      const session = await this.options.store.getSession(id);
      if (session === undefined || session.state !== 'queued') continue;
      this.queued.set(id, {
        since: session.queuedAt ?? session.createdAt ?? now,
        priority: session.priority,
      });
    }
  }

  /**
   * Takes the sample of the current period; periods that passed without a read (the poller slowed down
   * for a large fleet, or the store could not be read) are recorded as missed.
   */
  private sample(now: number, queueLength: number): void {
    const at = performance.now();
    const periods =
      this.lastSampleAt === Number.NEGATIVE_INFINITY
        ? 1
        : Math.max(1, Math.floor((at - this.lastSampleAt) / this.historySampleMs));
    const missed = Math.min(periods - 1, this.historySamples);
    this.lastSampleAt = at;
    for (let step = 0; step < missed; step++) this.advanceHistory(null, undefined);
    this.advanceHistory(queueLength, this.nodes);
    const message: ConsoleServerMessage =
      missed > 0
        ? { type: 'sample', at: now, queueLength, missed }
        : { type: 'sample', at: now, queueLength };
    for (const client of this.clients) this.sendTo(client.session, message);
  }

  /** One step of every history ring: the sample of `nodes` (no sample for any GPU when undefined). */
  private advanceHistory(queueLength: number | null, nodes: ReadonlyMap<string, NodeView> | undefined): void {
    this.historyHead = (this.historyHead + 1) % this.historySamples;
    this.queueHistory[this.historyHead] = queueLength;
    for (const [id, rings] of this.gpuHistory) {
      const node = nodes?.get(id);
      rings.forEach((ring, index) => {
        const gpu = node?.gpus[index];
        ring[this.historyHead] = gpu === undefined || gpu.stale ? noSample : renderPercent(gpu);
      });
    }
  }

  private orderedQueueHistory(): Array<number | null> {
    const ordered: Array<number | null> = [];
    for (let step = 1; step <= this.historySamples; step++)
      ordered.push(this.queueHistory[(this.historyHead + step) % this.historySamples] ?? null);
    return ordered;
  }

  private summarize(nodes: readonly NodeView[], queueLength: number, now: number): ConsoleSummary {
    const { autoscalerConfig: config, catalog } = this.options;
    const classes = new Map<string, { length: number; since: number | null }>(
      this.options.priorityClasses.map((priority) => [priority, { length: 0, since: null }]),
    );
    let oldest: number | null = null;
    for (const { since, priority } of this.queued.values()) {
      const entry = classes.get(priority) ?? { length: 0, since: null };
      entry.length += 1;
      entry.since = entry.since === null ? since : Math.min(entry.since, since);
      classes.set(priority, entry);
      oldest = oldest === null ? since : Math.min(oldest, since);
    }
    let freeSlots = 0;
    for (const node of nodes) freeSlots += nodeFreeSlots(node, config, (name) => catalog.findModel(name));
    const view = this.options.autoscalerView();
    const cooldownUntil = (at: number | null, seconds: number) =>
      at === null || at + seconds * 1000 <= now ? null : at + seconds * 1000;
    return {
      at: now,
      queue: {
        length: queueLength,
        oldestWaitMs: oldest === null ? null : Math.max(0, now - oldest),
        byPriority: [...classes].map(([priority, entry]) => ({
          priority,
          length: entry.length,
          oldestWaitMs: entry.since === null ? null : Math.max(0, now - entry.since),
        })),
      },
      autoscaler: {
        enabled: view.enabled,
        bufferReferenceSlots: config.bufferReferenceSlots,
        freeReferenceSlots: freeSlots,
        referenceSlotShare: config.referenceSlotShare,
        minNodes: config.minNodes,
        maxNodes: config.maxNodes,
        scaleUpCooldownSeconds: config.scaleUpCooldownSeconds,
        scaleDownCooldownSeconds: config.scaleDownCooldownSeconds,
        scaleUpCooldownUntil: cooldownUntil(view.lastScaleUpAt, config.scaleUpCooldownSeconds),
        scaleDownCooldownUntil: cooldownUntil(view.lastScaleDownAt, config.scaleDownCooldownSeconds),
        lastDecision: view.lastDecision,
        drainingVictims: view.drainingVictims,
        lastSignals: [...this.signals],
      },
    };
  }

  /** Sends a client what it has not seen yet, as far as its send buffer allows. */
  private flush(client: FeedClient): void {
    const { session } = client;
    if (session.closed) return;
    if (this.summary !== undefined && client.summarySent !== this.summaryText) {
      client.summarySent = this.summaryText;
      this.sendTo(session, { type: 'summary', summary: this.summary });
    }
    const newEvents = this.eventsAfter(client.lastEventSeq);
    for (let start = 0; start < newEvents.length; start += eventsPerMessage) {
      const events = newEvents.slice(start, start + eventsPerMessage);
      if (!this.sendTo(session, { type: 'events', events })) return;
      client.lastEventSeq = events[events.length - 1]!.seq;
    }
    while (
      (client.pending.size > 0 || client.removed.size > 0) &&
      session.bufferedBytes() < maxBufferedBytes
    ) {
      const nodes: ConsoleNode[] = [];
      for (const [id, withHistory] of client.pending) {
        client.pending.delete(id);
        const node = this.nodes.get(id);
        if (node === undefined) continue;
        client.known.add(id);
        if (withHistory) {
          const rings = this.gpuHistory.get(id) ?? [];
          nodes.push({ ...node, history: rings.map((ring) => hexSeries(ring, this.historyHead)) });
        } else nodes.push(node);
        if (nodes.length >= nodesPerMessage) break;
      }
      const removed = [...client.removed];
      client.removed.clear();
      for (const id of removed) client.known.delete(id);
      if (!this.sendTo(session, { type: 'nodes', nodes, removed })) return;
    }
  }
}

/** The timeline entry of a domain event. */
function describeEvent(seq: number, at: number, event: VcaEvent): ConsoleEvent {
  const entry = (kind: ConsoleEventKind, text: string, node?: string, session?: string): ConsoleEvent => {
    const described: ConsoleEvent = { seq, at, kind, text };
    if (node !== undefined) described.node = node;
    if (session !== undefined) described.session = session;
    return described;
  };
  switch (event.type) {
    case 'session-assigned': {
      const { session } = event;
      if (event.via === 'migration')
        return entry(
          'migration',
          `session ${session.id} migrated to ${placementText(session)}`,
          session.placement?.nodeId,
          session.id,
        );
      const from = event.via === 'queue' ? ' from the queue' : '';
      return entry(
        'session',
        `session ${session.id} (${session.game}) assigned to ${placementText(session)}${from}`,
        session.placement?.nodeId,
        session.id,
      );
    }
    case 'session-queued':
      return entry(
        'session',
        `session ${event.session.id} (${event.session.game}) queued at ${event.position}`,
        undefined,
        event.session.id,
      );
    case 'session-migrating':
      return entry(
        'migration',
        `session ${event.session.id} migrating off ${event.from.nodeId}`,
        event.from.nodeId,
        event.session.id,
      );
    case 'session-ended':
      return entry(
        'session',
        `session ${event.session.id} ended (${event.session.endReason ?? 'ended'})`,
        event.session.placement?.nodeId,
        event.session.id,
      );
    case 'node-state': {
      const { node } = event;
      if (node.state === 'provisioning')
        return entry(
          'registration',
          `node ${node.id} registered (${node.gpus.length} GPU${node.gpus.length === 1 ? '' : 's'}, group ${node.group ?? '-'})`,
          node.id,
        );
      if (node.state === 'draining')
        return entry(
          'drain',
          `node ${node.id} draining${node.drainDeadline === null ? '' : `, deadline ${new Date(node.drainDeadline).toISOString()}`}`,
          node.id,
        );
      return entry('node', `node ${node.id} is ${node.state}`, node.id);
    }
    case 'node-drained':
      return entry('drain', `node ${event.node.id} drained`, event.node.id);
    case 'node-removed':
      return entry('node', `node ${event.node.id} removed`, event.node.id);
    default:
      return entry('node', event.type);
  }
}

function placementText(session: { placement: { nodeId: string; gpuIndex: number } | null }): string {
  return session.placement === null ? '-' : `${session.placement.nodeId} GPU ${session.placement.gpuIndex}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
