/**
 * One policy on one trace, in virtual time: the real VCA (`createVca`, embedded store, placement
 * index, session service, fleet service) behind a fake clock. Gamers ask through the session service
 * (REST, `wait: true`) and heartbeat; probes report every 0.5 s what their GPUs truly carried a moment
 * earlier (lag, noise, clamped to 0..100 % as nvidia-smi shows it); the service's periodic tick and
 * the queue passes it asks for run as the gateway would run them. Meanwhile the truth of every GPU is
 * integrated: overload, degraded sessions, occupancy.
 */
import { seededRandom } from '../../kit/seeded-random.js';
import type { Clock } from '../../src/clock.js';
import type { VcaConfig } from '../../src/config/schema.js';
import type { Catalog } from '../../src/cost/catalog.js';
import { fullShare } from '../../src/cost/session-cost.js';
import { isVcaError } from '../../src/errors.js';
import type { SessionRecord } from '../../src/sessions/session.js';
import { createVca, type Vca } from '../../src/vca.js';
import type { GpuTelemetry, TelemetryReport } from '../../src/wire/index.js';
import { EventQueue } from './event-queue.js';
import { GpuTruth } from './gpu-truth.js';
import { type Policy, policyConfig, reportIntervalSeconds } from './policies.js';
import { type Arrival, type SimulatedNode, type Trace, trueCatalog, trueSessionCost } from './trace.js';

/** The learned cost table as the VCA lists it (`vca.costs.entries()`), read structurally. */
export interface LearnedCostEntry {
  game: string;
  model: string;
  dimension: string;
  catalog: number;
  learned: number | null;
  ratio: number | null;
  confidence: number;
  active: boolean;
  /** Sessions and samples the estimate rests on, when the build says. */
  sessions?: number;
  samples?: number;
}

interface LearnedCostService {
  flush(): unknown;
  entries(): LearnedCostEntry[] | Promise<LearnedCostEntry[]>;
}

/** `vca.costs` when this build has learned costs (listing through `entries()`, or `view()`). */
function learnedCostsOf(vca: Vca): LearnedCostService | undefined {
  const candidate = (vca as unknown as { costs?: Partial<Record<'flush' | 'entries' | 'view', unknown>> })
    .costs;
  if (!candidate || typeof candidate.flush !== 'function') return undefined;
  const list = typeof candidate.entries === 'function' ? candidate.entries : candidate.view;
  if (typeof list !== 'function') return undefined;
  const flush = candidate.flush as () => unknown;
  return {
    flush: () => flush.call(candidate),
    entries: () => (list as () => LearnedCostEntry[] | Promise<LearnedCostEntry[]>).call(candidate),
  };
}

export interface SimulationOptions {
  /** Seed of the telemetry noise and lag (the trace has its own). */
  noiseSeed: number;
  /** Telemetry lag range: a sample shows the truth this long before it arrives, ms. */
  lagRangeMs: readonly [number, number];
  /** Utilization noise, +- percentage points (uniform). */
  noisePoints: number;
  /** Gamer heartbeat period, ms (REST lease 30 s by default). */
  heartbeatMs: number;
  /** Sessions of a title after which its learned costs are checked. */
  learnedCheckAfterSessions: number;
  /** Length of the windows of the overload timeline, ms. */
  timelineWindowMs: number;
  /** Configuration overrides for the VCA policies (dotted paths), for experiments. */
  configOverrides?: Readonly<Record<string, unknown>>;
  /** Called with the VCA under test once it is built (diagnostics: subscribe to its events). */
  inspect?: (vca: Vca, elapsedMs: () => number) => void;
}

export const defaultSimulationOptions: Omit<SimulationOptions, 'noiseSeed'> = {
  lagRangeMs: [200, 500],
  noisePoints: 2.5,
  heartbeatMs: 10_000,
  learnedCheckAfterSessions: 200,
  timelineWindowMs: 300_000,
};

/** Learned versus true cost of one title on one model and dimension. */
export interface LearnedCostError {
  game: string;
  model: string;
  dimension: string;
  trueRatio: number;
  learnedRatio: number | null;
  confidence: number;
  active: boolean;
  sessions: number | null;
  samples: number | null;
  /** |learned - true| / true; null when nothing was learned. */
  error: number | null;
}

export interface LearnedCostCheck {
  /** Sessions of the title admitted when the check was made. */
  sessions: number;
  /** Virtual seconds from the start of the run. */
  atSeconds: number;
  entries: LearnedCostError[];
}

export interface PolicyResult {
  policy: string;
  /** The configuration sections that shape placement, as the run used them. */
  settings: Record<string, unknown>;
  arrivals: number;
  admittedAtOnce: number;
  admittedAfterQueue: number;
  admitted: number;
  /** Gave up in the queue (queue timeout). */
  timedOut: number;
  /** Still queued when the run ended. */
  queuedAtEnd: number;
  /** Refused outright (no model can host the format under the prices in force). */
  refused: number;
  /** Wait of the sessions admitted after queueing, seconds. */
  queueWaitMeanSeconds: number;
  queueWaitP95Seconds: number;
  overloadGpuSeconds: number;
  overloadGpuSecondsByDimension: { render: number; encoder: number; vram: number };
  /** Overload GPU-seconds with a single session on the GPU (a format whose truth does not fit the model). */
  overloadGpuSecondsAlone: number;
  /** The same by format and model (`<game> <W>x<H>@<fps> on <model>`), largest first. */
  overloadAloneByFormat: Record<string, number>;
  /** Session-seconds on overloaded GPUs / all session-seconds (sessions loading a GPU). */
  degradedSessionShare: number;
  sessionSeconds: number;
  degradedSessionSeconds: number;
  /** GPU-seconds with at least one session placed. */
  occupiedGpuSeconds: number;
  meanOccupiedGpus: number;
  overloadGpuSecondsByModel: Record<string, number>;
  /** The GPUs overloaded longest. */
  worstGpus: Array<{
    gpu: string;
    model: string;
    overloadSeconds: number;
    dimensions: Record<string, number>;
  }>;
  /** Overload GPU-seconds per window of `timelineWindowMs`. */
  overloadTimeline: number[];
  /** Per title: degraded session-seconds / its session-seconds. */
  degradedShareByGame: Record<string, number>;
  sessionsByGame: Record<string, number>;
  /** When the build learns costs: the check after N sessions of each title, and at the end. */
  learnedAfterSessions?: Record<string, LearnedCostCheck>;
  learnedAtEnd?: LearnedCostError[];
  /** Lease expiries (a simulation error if non-zero: gamers heartbeat). */
  leaseExpired: number;
  events: number;
  wallSeconds: number;
}

type SimulationEvent =
  | { kind: 'arrival'; arrival: Arrival }
  | { kind: 'activate'; sessionId: string }
  | { kind: 'end'; sessionId: string }
  | { kind: 'report'; node: SimulatedNode }
  | { kind: 'tick' }
  | { kind: 'heartbeat' }
  | { kind: 'flush' };

interface SimulatedSession {
  arrival: Arrival;
  gpuKey: string | null;
  queued: boolean;
}

class VirtualClock implements Clock {
  readonly start = 1_800_000_000_000;
  elapsed = 0;
  now(): number {
    return this.start + this.elapsed;
  }
}

function flushSecondsOf(vca: Vca): number {
  const costs = (vca.config as unknown as { costs?: { learning?: { flushSeconds?: number } } }).costs;
  return costs?.learning?.flushSeconds ?? 10;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** The true ratio (true / catalog) of a title on a model and dimension, as the trace defines it. */
export function trueRatio(trace: Trace, game: string, model: string, dimension: string): number {
  const name = dimension.toLowerCase();
  if (name.includes('enc')) return trace.encoderFactors.get(model) ?? 1;
  const title = trace.titles.get(game);
  if (!title) return 1;
  return name.includes('vram') || name.includes('mem') ? title.vramFactor : title.renderFactor;
}

async function learnedErrors(trace: Trace, costs: LearnedCostService, game?: string) {
  const entries = await costs.entries();
  const errors: LearnedCostError[] = [];
  for (const entry of entries) {
    if (game !== undefined && entry.game !== game) continue;
    if (entry.dimension.toLowerCase().includes('session')) continue;
    const truth = trueRatio(trace, entry.game, entry.model, entry.dimension);
    const ratio =
      entry.ratio ?? (entry.learned !== null && entry.catalog > 0 ? entry.learned / entry.catalog : null);
    errors.push({
      game: entry.game,
      model: entry.model,
      dimension: entry.dimension,
      trueRatio: truth,
      learnedRatio: ratio,
      confidence: entry.confidence,
      active: entry.active,
      sessions: entry.sessions ?? null,
      samples: entry.samples ?? null,
      error: ratio === null ? null : Math.abs(ratio - truth) / truth,
    });
  }
  return errors;
}

function placementSettings(config: Readonly<VcaConfig>): Record<string, unknown> {
  const { latencyPolicies: _latency, ...placement } = config.placement;
  const settings: Record<string, unknown> = {
    placement,
    telemetry: config.telemetry,
    queue: config.queue,
    leases: config.leases,
  };
  const costs = (config as unknown as { costs?: unknown }).costs;
  if (costs !== undefined) settings.costs = costs;
  return settings;
}

export async function simulatePolicy(
  trace: Trace,
  policy: Policy,
  options: SimulationOptions,
): Promise<PolicyResult> {
  const wallStart = performance.now();
  const config = policyConfig(policy, options.configOverrides);
  const catalog: Catalog = policy.trueCatalog ? trueCatalog(trace) : trace.catalog;
  const clock = new VirtualClock();
  const scheduled: Array<() => void> = [];
  let idCounter = 0;
  let backgroundError: unknown;
  const vca = createVca({
    config,
    catalog,
    clock,
    ids: () => `q-${++idCounter}`,
    schedule: (task) => scheduled.push(task),
    onBackgroundError: (error) => {
      backgroundError ??= error;
    },
  });
  const costs = learnedCostsOf(vca);
  options.inspect?.(vca, () => clock.elapsed);
  const random = seededRandom(options.noiseSeed);
  const endMs = trace.options.durationSeconds * 1000;

  const truths = new Map<string, GpuTruth>();
  const gpusOfNode = new Map<string, GpuTruth[]>();
  for (const gpu of trace.gpus) {
    const truth = new GpuTruth(gpu);
    truths.set(gpu.key, truth);
    const list = gpusOfNode.get(gpu.nodeId) ?? [];
    list.push(truth);
    gpusOfNode.set(gpu.nodeId, list);
  }

  const sessions = new Map<string, SimulatedSession>();
  const live = new Set<string>();
  const assignedEvents: Array<{ session: SessionRecord; via: string }> = [];
  let timedOut = 0;
  let leaseExpired = 0;
  vca.events.subscribe((event) => {
    if (event.type === 'session-assigned') assignedEvents.push({ session: event.session, via: event.via });
    if (event.type === 'session-ended') {
      live.delete(event.session.id);
      if (event.session.endReason === 'queue-timeout') timedOut++;
      if (event.session.endReason === 'lease-expired') leaseExpired++;
    }
  });

  const agenda = new EventQueue<SimulationEvent>();
  for (const arrival of trace.arrivals) agenda.push(arrival.at, { kind: 'arrival', arrival });
  const tickMs = Math.max(100, Math.min(1000, reportIntervalSeconds * 500));
  agenda.push(tickMs, { kind: 'tick' });
  agenda.push(options.heartbeatMs, { kind: 'heartbeat' });
  const flushMs = flushSecondsOf(vca) * 1000;
  if (costs) agenda.push(flushMs, { kind: 'flush' });

  // The fleet joins at time 0; with telemetry, each node's first report makes it ready.
  await vca.fleet.registerNodes(
    trace.nodes.map((node) => ({
      id: node.id,
      host: '10.0.0.1',
      port: 5900,
      protocol: 'webrtc',
      gpus: [{ model: node.model, count: node.gpuCount }],
      labels: {},
    })),
  );
  if (policy.telemetry) {
    for (const node of trace.nodes) agenda.push(node.reportPhaseMs, { kind: 'report', node });
  }

  let admittedAtOnce = 0;
  let admittedAfterQueue = 0;
  let refused = 0;
  const waits: number[] = [];
  const admittedByGame = new Map<string, number>();
  const sessionMsByGame = new Map<string, number>();
  const learnedAfterSessions: Record<string, LearnedCostCheck> = {};
  const pendingChecks: string[] = [];

  let lastAccrued = 0;
  let occupiedGpuMs = 0;
  let sessionMs = 0;
  let degradedMs = 0;
  const timeline: number[] = [];
  const accrue = (until: number) => {
    while (lastAccrued < until) {
      const windowIndex = Math.floor(lastAccrued / options.timelineWindowMs);
      const step = Math.min(until, (windowIndex + 1) * options.timelineWindowMs) - lastAccrued;
      for (const truth of truths.values()) {
        const before = truth.overloadMs;
        degradedMs += truth.accrue(step);
        if (truth.overloadMs !== before)
          timeline[windowIndex] = (timeline[windowIndex] ?? 0) + (truth.overloadMs - before);
        if (truth.placed > 0) occupiedGpuMs += step;
        sessionMs += truth.now.sessions * step;
      }
      lastAccrued += step;
    }
  };
  // Session-ms per title, accrued at each session's end (or the end of the run).
  const activeSince = new Map<string, number>();

  const runScheduled = async () => {
    while (scheduled.length > 0) {
      const tasks = scheduled.splice(0);
      for (const task of tasks) task();
      // The tasks start queue passes without awaiting them; the embedded store never waits on I/O,
      // so one macrotask turn lets them finish.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };

  const takeAssignments = async (now: number) => {
    while (assignedEvents.length > 0) {
      const { session, via } = assignedEvents.shift()!;
      const simulated = sessions.get(session.id);
      if (!simulated || !session.placement) continue;
      if (via === 'migration') continue;
      const { nodeId, gpuIndex, model } = session.placement;
      const key = `${nodeId}#${gpuIndex}`;
      const truth = truths.get(key)!;
      const gameEntry = trace.catalog.games.get(session.game)!;
      const cost = trueSessionCost(
        trace,
        gameEntry,
        { width: session.width, height: session.height },
        session.fps,
        trace.catalog.gpuModels.get(model)!,
      )!;
      const arrival = simulated.arrival;
      simulated.gpuKey = key;
      truth.place({
        id: session.id,
        game: session.game,
        format: `${session.game} ${session.width}x${session.height}@${session.fps}`,
        cost,
        effectiveFrom: now + arrival.startRampMs,
        endedAt: Infinity,
        active: false,
      });
      agenda.push(now + arrival.startRampMs, { kind: 'activate', sessionId: session.id });
      agenda.push(now + arrival.playMs, { kind: 'end', sessionId: session.id });
      if (simulated.queued) {
        admittedAfterQueue++;
        waits.push((now - arrival.at) / 1000);
      } else {
        admittedAtOnce++;
      }
      const count = (admittedByGame.get(session.game) ?? 0) + 1;
      admittedByGame.set(session.game, count);
      if (count === options.learnedCheckAfterSessions) pendingChecks.push(session.game);
    }
    if (costs) {
      for (const game of pendingChecks.splice(0)) {
        learnedAfterSessions[game] = {
          sessions: options.learnedCheckAfterSessions,
          atSeconds: now / 1000,
          entries: await learnedErrors(trace, costs, game),
        };
      }
    }
  };

  /** A node's report arriving at `now`: its probe sampled the truth `lag` earlier, and says when. */
  const report = (node: SimulatedNode, now: number): TelemetryReport => {
    const lag = options.lagRangeMs[0] + (options.lagRangeMs[1] - options.lagRangeMs[0]) * random();
    const sampledAt = Math.max(0, Math.round(now - lag));
    const gpus = gpusOfNode.get(node.id)!.map((truth): GpuTelemetry => {
      const load = truth.loadAt(sampledAt);
      const noisy = (share: number) => {
        const percent = (share / fullShare) * 100 + (random() * 2 - 1) * options.noisePoints;
        return Math.round(Math.min(100, Math.max(0, percent)));
      };
      const total = truth.vramTotalMiB;
      return {
        index: truth.gpu.index,
        utilizationGpu: noisy(load.render),
        utilizationEncoder: noisy(load.encoder),
        memoryUsed: Math.min(total, truth.gpu.baselineVramMiB + load.vramMiB),
        memoryTotal: total,
        encoderSessions: load.sessions,
        temperatureGpu: 55,
        throttleActive: false,
      };
    });
    return { ts: clock.start + sampledAt, gpus };
  };

  let events = 0;
  for (;;) {
    const next = agenda.pop();
    if (!next || next.at > endMs) break;
    const { at, item } = next;
    events++;
    accrue(at);
    clock.elapsed = at;
    switch (item.kind) {
      case 'arrival': {
        const { arrival } = item;
        try {
          const outcome = await vca.sessions.request(
            { game: arrival.game, resolution: arrival.resolution, fps: arrival.fps },
            'rest',
            true,
          );
          sessions.set(outcome.session.id, { arrival, gpuKey: null, queued: outcome.kind === 'queued' });
          live.add(outcome.session.id);
        } catch (error) {
          if (!isVcaError(error)) throw error;
          refused++;
        }
        break;
      }
      case 'activate': {
        const simulated = sessions.get(item.sessionId);
        if (simulated?.gpuKey) {
          truths.get(simulated.gpuKey)!.activate(item.sessionId);
          activeSince.set(item.sessionId, at);
        }
        break;
      }
      case 'end': {
        const simulated = sessions.get(item.sessionId);
        if (simulated?.gpuKey) {
          truths.get(simulated.gpuKey)!.end(item.sessionId, at);
          const since = activeSince.get(item.sessionId);
          if (since !== undefined) {
            const game = simulated.arrival.game;
            sessionMsByGame.set(game, (sessionMsByGame.get(game) ?? 0) + (at - since));
            activeSince.delete(item.sessionId);
          }
        }
        await vca.sessions.end(item.sessionId, 'released');
        break;
      }
      case 'report':
        await vca.fleet.recordTelemetry(item.node.id, report(item.node, at));
        agenda.push(at + reportIntervalSeconds * 1000, item);
        break;
      case 'tick':
        await vca.sessions.tick();
        agenda.push(at + tickMs, item);
        break;
      case 'heartbeat':
        await vca.sessions.renewLeases([...live], 'rest');
        agenda.push(at + options.heartbeatMs, item);
        break;
      case 'flush':
        await costs?.flush();
        agenda.push(at + flushMs, item);
        break;
    }
    await runScheduled();
    if (backgroundError) throw backgroundError;
    await takeAssignments(at);
  }
  accrue(endMs);
  for (const [id, since] of activeSince) {
    const game = sessions.get(id)!.arrival.game;
    sessionMsByGame.set(game, (sessionMsByGame.get(game) ?? 0) + (endMs - since));
  }

  let queuedAtEnd = 0;
  for (const simulated of sessions.values()) if (simulated.queued && simulated.gpuKey === null) queuedAtEnd++;
  queuedAtEnd -= timedOut;

  const overloadByModel: Record<string, number> = {};
  const byDimension = { render: 0, encoder: 0, vram: 0 };
  const degradedByGame = new Map<string, number>();
  let overloadMs = 0;
  let overloadAloneMs = 0;
  const aloneByFormat = new Map<string, number>();
  for (const truth of truths.values()) {
    overloadMs += truth.overloadMs;
    overloadAloneMs += truth.overloadAloneMs;
    for (const [format, ms] of truth.overloadAloneMsByFormat) {
      const key = `${format} on ${truth.gpu.model.name}`;
      aloneByFormat.set(key, (aloneByFormat.get(key) ?? 0) + ms);
    }
    const model = truth.gpu.model.name;
    overloadByModel[model] = (overloadByModel[model] ?? 0) + truth.overloadMs / 1000;
    byDimension.render += truth.overloadMsByDimension.render / 1000;
    byDimension.encoder += truth.overloadMsByDimension.encoder / 1000;
    byDimension.vram += truth.overloadMsByDimension.vram / 1000;
    for (const [game, ms] of truth.degradedMsByGame)
      degradedByGame.set(game, (degradedByGame.get(game) ?? 0) + ms);
  }
  const worstGpus = [...truths.values()]
    .filter((truth) => truth.overloadMs > 0)
    .sort((a, b) => b.overloadMs - a.overloadMs)
    .slice(0, 8)
    .map((truth) => ({
      gpu: truth.gpu.key,
      model: truth.gpu.model.name,
      overloadSeconds: truth.overloadMs / 1000,
      dimensions: {
        render: truth.overloadMsByDimension.render / 1000,
        encoder: truth.overloadMsByDimension.encoder / 1000,
        vram: truth.overloadMsByDimension.vram / 1000,
      },
    }));
  const degradedShareByGame: Record<string, number> = {};
  for (const [game, ms] of sessionMsByGame)
    degradedShareByGame[game] = ms > 0 ? (degradedByGame.get(game) ?? 0) / ms : 0;
  waits.sort((a, b) => a - b);

  const result: PolicyResult = {
    policy: policy.name,
    settings: placementSettings(config),
    arrivals: trace.arrivals.length,
    admittedAtOnce,
    admittedAfterQueue,
    admitted: admittedAtOnce + admittedAfterQueue,
    timedOut,
    queuedAtEnd,
    refused,
    queueWaitMeanSeconds: waits.length > 0 ? waits.reduce((sum, wait) => sum + wait, 0) / waits.length : 0,
    queueWaitP95Seconds: percentile(waits, 0.95),
    overloadGpuSeconds: overloadMs / 1000,
    overloadGpuSecondsByDimension: byDimension,
    overloadGpuSecondsAlone: overloadAloneMs / 1000,
    overloadAloneByFormat: Object.fromEntries(
      [...aloneByFormat].sort((a, b) => b[1] - a[1]).map(([key, ms]) => [key, ms / 1000]),
    ),
    degradedSessionShare: sessionMs > 0 ? degradedMs / sessionMs : 0,
    sessionSeconds: sessionMs / 1000,
    degradedSessionSeconds: degradedMs / 1000,
    occupiedGpuSeconds: occupiedGpuMs / 1000,
    meanOccupiedGpus: occupiedGpuMs / endMs,
    overloadGpuSecondsByModel: overloadByModel,
    worstGpus,
    overloadTimeline: Array.from(
      { length: Math.ceil(endMs / options.timelineWindowMs) },
      (_, i) => (timeline[i] ?? 0) / 1000,
    ),
    degradedShareByGame,
    sessionsByGame: Object.fromEntries([...admittedByGame].sort((a, b) => b[1] - a[1])),
    leaseExpired,
    events,
    wallSeconds: (performance.now() - wallStart) / 1000,
  };
  if (costs) {
    result.learnedAfterSessions = learnedAfterSessions;
    result.learnedAtEnd = await learnedErrors(trace, costs);
  }
  return result;
}
