/**
 * The gateway's Prometheus metrics: one prom-client Registry per gateway instance, names
 * `vca_<noun>_<unit>`, low-cardinality labels. Counters move on domain events; fleet gauges are read
 * from the store at scrape time, so the request path allocates nothing for metrics.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { fullShare } from '../cost/session-cost.js';
import { nodeStates } from '../fleet/node-state.js';
import type { VcaEvent } from '../sessions/events.js';
import { fleetReadPacing, type NodeView, type StateStore } from '../state/state-store.js';

export interface VcaMetricsOptions {
  store: StateStore;
  perGpuSeriesLimit: number;
  instance?: string;
  /** Learned title costs, for vca_cost_ratio. */
  costs?: { entries(): ReadonlyArray<{ game: string; model: string; dimension: string; ratio: number }> };
}

/** How long one read of the fleet serves scrapes at least (the collectors of one scrape run within it). */
const fleetReadReuseMs = 1000;

function formatLabel(width: number, height: number): string {
  return `${width}x${height}`;
}

export class VcaMetrics {
  readonly registry = new Registry();
  readonly allocationSeconds: Histogram<'outcome'>;
  readonly httpErrors: Counter<'code'>;
  readonly webhookEvents: Counter<'source' | 'action' | 'outcome'>;
  readonly outboundCalls: Counter<'kind' | 'outcome'>;
  readonly websocketConnections: Gauge;
  readonly httpAbortedRequests: Counter;
  readonly websocketClosed: Counter<'reason'>;
  /** The round trip a gamer reported to the region its session was placed in (the issue names it in ms). */
  readonly placementLatencyMs: Histogram;
  /** Queued sessions whose latency policy relaxed to the next, looser one (one per policy passed). */
  readonly latencyPolicyRelaxations: Counter;
  private readonly sessionsAssigned: Counter<'game' | 'resolution'>;
  private readonly sessionsEnded: Counter<'reason'>;
  /** Sessions that ended because their node left while no other node had room (`node-removed`). */
  private readonly sessionsLost: Counter<'reason'>;
  private readonly migrations: Counter;
  private readonly queueWaitSeconds: Histogram;
  private readonly activeSessions: Gauge<'game' | 'resolution'>;

  constructor(options: VcaMetricsOptions) {
    const registers = [this.registry];
    const { store } = options;
    // A store that does not answer must not take the whole scrape down (the runtime series, the HTTP
    // error counters and vca_store_up are what show the outage): series read from it keep their last
    // value and vca_store_up goes to 0.
    const read = async <T>(task: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await task();
      } catch {
        return undefined;
      }
    };
    // One read of the fleet serves a whole scrape (the gauges below that need every node share it), and
    // the scrapes of the next `fleetReadPacing` (50) times the read's duration: a read of a 10,000-node
    // fleet on Redis takes seconds, and a scrape every 15 s would otherwise spend a sixth of a core on it.
    let fleetRead: { at: number; tookMs: number; nodes: Promise<NodeView[] | undefined> } | undefined;
    const readFleet = (): Promise<NodeView[] | undefined> => {
      const at = performance.now();
      if (
        fleetRead === undefined ||
        at - fleetRead.at > Math.max(fleetReadReuseMs, fleetReadPacing * fleetRead.tookMs)
      ) {
        const entry = { at, tookMs: 0, nodes: read(() => store.listNodes()) };
        // A failed read (store down) is not kept longer than one scrape.
        void entry.nodes.then((nodes) => {
          if (nodes !== undefined) entry.tookMs = performance.now() - at;
        });
        fleetRead = entry;
      }
      return fleetRead.nodes;
    };
    new Gauge({
      name: 'vca_store_up',
      help: 'Whether the state store answered its ping at this scrape (1) or not (0)',
      registers,
      async collect() {
        this.set((await read(() => store.ping().then(() => true))) ? 1 : 0);
      },
    });
    this.allocationSeconds = new Histogram({
      name: 'vca_allocation_duration_seconds',
      help: 'Time to decide a session request (assign, queue or refuse)',
      labelNames: ['outcome'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: 'vca_queue_wait_seconds',
      help: 'Time sessions waited in the queue before being assigned',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    this.sessionsAssigned = new Counter({
      name: 'vca_sessions_assigned_total',
      help: 'Sessions assigned to a GPU (migrations not included)',
      labelNames: ['game', 'resolution'],
      registers,
    });
    this.sessionsEnded = new Counter({
      name: 'vca_sessions_ended_total',
      help: 'Sessions ended, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.sessionsLost = new Counter({
      name: 'vca_sessions_lost_total',
      help: 'Sessions lost with their node: it was removed (its machine deleted) and no other node had room',
      labelNames: ['reason'],
      registers,
    });
    // Present at 0 from the start, so an alert on its increase sees the first loss.
    this.sessionsLost.inc({ reason: 'node-removed' }, 0);
    this.migrations = new Counter({
      name: 'vca_session_migrations_total',
      help: 'Sessions moved off a draining node at its deadline',
      registers,
    });
    this.activeSessions = new Gauge({
      name: 'vca_sessions_active',
      help: 'Sessions holding a GPU now, by game and resolution (this instance view)',
      labelNames: ['game', 'resolution'],
      registers,
    });
    this.httpErrors = new Counter({
      name: 'vca_http_errors_total',
      help: 'Error responses by stable error code',
      labelNames: ['code'],
      registers,
    });
    this.webhookEvents = new Counter({
      name: 'vca_webhook_events_total',
      help: 'Orchestrator webhook events by source, action and outcome (applied, replayed, rejected)',
      labelNames: ['source', 'action', 'outcome'],
      registers,
    });
    this.outboundCalls = new Counter({
      name: 'vca_outbound_calls_total',
      help: 'Callbacks and scale signals sent to the orchestrator, by outcome (retried: an attempt failed, another follows)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    new Gauge({
      name: 'vca_callback_outbox_entries',
      help: 'Drain-complete callbacks in the store waiting for delivery (claimed or not)',
      registers,
      async collect() {
        const length = await read(() => store.outboxLength());
        if (length !== undefined) this.set(length);
      },
    });
    this.websocketConnections = new Gauge({
      name: 'vca_websocket_connections',
      help: 'Open gamer WebSocket connections on this instance',
      registers,
    });
    this.httpAbortedRequests = new Counter({
      name: 'vca_http_aborted_requests_total',
      help: 'Requests whose client went away before its body was complete (not an error of the gateway)',
      registers,
    });
    this.websocketClosed = new Counter({
      name: 'vca_websocket_closed_total',
      help: 'WebSockets the gateway cut off to protect the others, by reason (message-rate, messages-in-flight, slow-consumer)',
      labelNames: ['reason'],
      registers,
    });
    this.placementLatencyMs = new Histogram({
      name: 'vca_placement_latency_ms',
      help: 'Round-trip ms the gamer reported to the region its session was placed in (sessions that reported latencies)',
      buckets: [5, 10, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500],
      registers,
    });
    this.latencyPolicyRelaxations = new Counter({
      name: 'vca_latency_policy_relaxations_total',
      help: 'Times a queued session passed to a looser latency policy (placement.latencyPolicies)',
      registers,
    });
    new Gauge({
      name: 'vca_sessions_queued',
      help: 'Sessions waiting in the queue',
      registers,
      async collect() {
        const positions = await read(() => store.queuePositions());
        if (positions !== undefined) this.set(positions.size);
      },
    });
    const nodesByState = new Gauge({
      name: 'vca_nodes',
      help: 'Rendering nodes by lifecycle state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = new Map<string, number>(nodeStates.map((state) => [state, 0]));
        const nodes = await readFleet();
        if (nodes === undefined) return;
        for (const node of nodes) counts.set(node.state, (counts.get(node.state) ?? 0) + 1);
        for (const [state, count] of counts) nodesByState.set({ state }, count);
      },
    });
    new Gauge({
      name: 'vca_gpus_stale',
      help: 'GPUs whose telemetry is older than telemetry.staleAfterIntervals reports (no new sessions), on nodes not drained or removed',
      registers,
      async collect() {
        let stale = 0;
        const nodes = await readFleet();
        if (nodes === undefined) return;
        for (const node of nodes) {
          if (node.state === 'drained' || node.state === 'removed') continue;
          for (const gpu of node.gpus) if (gpu.stale) stale++;
        }
        this.set(stale);
      },
    });
    const costs = options.costs;
    const costRatio = new Gauge({
      name: 'vca_cost_ratio',
      help: 'Learned cost of a title on a GPU model, per dimension (gpu, encoder, vram), divided by the catalog cost',
      labelNames: ['game', 'model', 'dimension'],
      registers,
      collect() {
        costRatio.reset();
        for (const entry of costs?.entries() ?? []) {
          costRatio.set({ game: entry.game, model: entry.model, dimension: entry.dimension }, entry.ratio);
        }
      },
    });
    const perGpuLimit = options.perGpuSeriesLimit;
    const gpuLoad = new Gauge({
      name: 'vca_gpu_effective_load_ratio',
      help: 'Effective load per GPU and dimension (max of committed and measured), 0..1',
      labelNames: ['node', 'gpu', 'dimension'],
      registers,
      async collect() {
        gpuLoad.reset();
        const nodes = await readFleet();
        if (nodes === undefined) return;
        let gpus = 0;
        for (const node of nodes) gpus += node.gpus.length;
        if (gpus > perGpuLimit) return;
        for (const node of nodes) {
          for (const gpu of node.gpus) {
            const labels = { node: node.id, gpu: String(gpu.index) };
            gpuLoad.set({ ...labels, dimension: 'gpu' }, gpu.effective.gpu / fullShare);
            gpuLoad.set({ ...labels, dimension: 'encoder' }, gpu.effective.encoder / fullShare);
            gpuLoad.set({ ...labels, dimension: 'vram' }, gpu.effective.vramMiB / gpu.memoryTotalMiB);
          }
        }
      },
    });
  }

  private readonly allocationChildren = new Map<string, ReturnType<Histogram<'outcome'>['labels']>>();

  /** Records one session request's decision time; label children are cached (no per-call label hashing). */
  observeAllocation(outcome: string, seconds: number): void {
    let child = this.allocationChildren.get(outcome);
    if (!child) {
      child = this.allocationSeconds.labels(outcome);
      this.allocationChildren.set(outcome, child);
    }
    child.observe(seconds);
  }

  /** Domain events -> counters and gauges. */
  observe(event: VcaEvent): void {
    switch (event.type) {
      case 'session-assigned': {
        const { session } = event;
        const labels = { game: session.game, resolution: formatLabel(session.width, session.height) };
        if (event.via === 'migration') {
          this.migrations.inc();
          return;
        }
        // Held a GPU before only if it came back from a migration that found no room.
        this.activeSessions.inc(labels);
        if (session.migrations === 0) this.sessionsAssigned.inc(labels);
        if (event.via === 'queue' && session.queuedAt !== null && session.assignedAt !== null) {
          this.queueWaitSeconds.observe((session.assignedAt - session.queuedAt) / 1000);
        }
        return;
      }
      case 'session-migrating': {
        const { session } = event;
        // Migrated into the queue: it no longer holds a GPU (a direct move keeps it active).
        if (session.state === 'queued') {
          this.migrations.inc();
          this.activeSessions.dec({
            game: session.game,
            resolution: formatLabel(session.width, session.height),
          });
        }
        return;
      }
      case 'session-ended': {
        const { session } = event;
        this.sessionsEnded.inc({ reason: session.endReason ?? 'unknown' });
        if (session.endReason === 'node-removed') this.sessionsLost.inc({ reason: 'node-removed' });
        if (session.placement) {
          this.activeSessions.dec({
            game: session.game,
            resolution: formatLabel(session.width, session.height),
          });
        }
        return;
      }
      default:
        return;
    }
  }
}
