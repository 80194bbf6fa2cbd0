/**
 * The differential test's model: a small fleet, random store operations over it, the observable
 * snapshot two stores must agree on after every step, and the placement oracle that says when the
 * best fit is unique (so both stores must pick the same GPU) and when it is a tie within the
 * embedded index's resolution (either pick is right, and the test re-aligns the stores).
 */
import fc from 'fast-check';
import type { LoadVector } from '../../src/cost/session-cost.js';
import { isVcaError } from '../../src/errors.js';
import type { NodeRegistration } from '../../src/fleet/render-node.js';
import type { GpuTelemetry, TelemetryReport } from '../../src/fleet/telemetry.js';
import type { LatencyPlan, LatencyRules } from '../../src/placement/latency-policy.js';
import { axis, bucketOf, sureBucket } from '../../src/placement/placement-index.js';
import type { SessionRecord, SessionSpec } from '../../src/sessions/session.js';
import type { GpuView, NodeView, StateStore } from '../../src/state/state-store.js';
import { catalog, costsFor, headroom, type SessionFormat, sessionSpec } from './store-fixtures.js';

/** The fleet every sequence draws from: models with and without NVENC, a shared encoder limit, regions. */
export const fleetNodes: ReadonlyArray<{
  id: string;
  gpus: NodeRegistration['gpus'];
  labels: Record<string, string>;
  group?: string;
  orchestrator?: NodeRegistration['orchestrator'];
}> = [
  {
    id: 'n0',
    gpus: [{ model: 'L4', count: 2 }],
    labels: { region: 'eu', tier: 'gold' },
    group: 'asg-a',
    orchestrator: {
      kind: 'heat',
      stackId: 'c0d1e2f3-0000-4000-8000-00000000000a',
      group: 'asg-a',
      member: 'abcdef012345',
      serverId: '5b1e0f9c-2a44-4d0e-9d2b-6c3a0e0d9f01',
      createdAt: '2026-11-19T10:35:59Z',
    },
  },
  {
    id: 'n1',
    gpus: [{ model: 'L40S', count: 1 }],
    labels: { region: 'eu' },
    group: 'asg-a',
    orchestrator: {
      kind: 'heat',
      stackId: 'c0d1e2f3-0000-4000-8000-00000000000a',
      group: 'asg-a',
      member: 'bcdef0123456',
      createdAt: '2026-11-19T10:36:12Z',
      failed: true,
    },
  },
  { id: 'n2', gpus: [{ model: 'RTX 4080 SUPER', count: 2 }], labels: { region: 'us' } },
  { id: 'n3', gpus: [{ model: 'L4', count: 1 }], labels: { region: 'us', tier: 'gold' }, group: 'asg-b' },
  { id: 'n4', gpus: [{ model: 'T4', count: 1 }], labels: { region: 'eu' } },
  {
    id: 'n5',
    gpus: [
      { model: 'H100', count: 1 },
      { model: 'L4', count: 1 },
    ],
    labels: { region: 'us' },
  },
];

export const formats: readonly SessionFormat[] = [
  { game: 'stardew-valley', resolution: '720p', fps: 30 },
  { game: 'hades', resolution: '1080p', fps: 60 },
  { game: 'fortnite', resolution: '1440p', fps: 120 },
  { game: 'cyberpunk-2077', resolution: '1080p', fps: 60 },
  { game: 'cyberpunk-2077', resolution: '4k', fps: 60 },
];

/** Model restrictions a request may carry (gpuModels): none, or a subset. */
export const modelSets: ReadonlyArray<readonly string[] | undefined> = [
  undefined,
  undefined,
  ['L4'],
  ['L40S'],
  ['L4', 'RTX 4080 SUPER'],
  ['T4', 'L40S'],
];

const nodeStates = ['provisioning', 'ready', 'unhealthy', 'draining', 'drained', 'removed'] as const;

export type GpuSampleKind = 'load' | 'unknown' | 'hot' | 'throttled' | 'not-a-number';

export interface GpuSample {
  kind: GpuSampleKind;
  utilization: number;
  encoder: number;
  vramShare: number;
  encoderSessions: number | null;
  /** Reported memory total minus the catalog's, MiB (drivers report a little less than the card has). */
  memoryDelta: number;
}

export type Operation =
  | { kind: 'register'; node: number; otherHost: boolean }
  | {
      kind: 'telemetry';
      node: number;
      samples: GpuSample[];
      badIndex: boolean;
      tsOffsetMs: number | null;
      /** Through reportTelemetry (the brief answer, with or without sessions) instead of recordTelemetry. */
      brief: 'no' | 'brief' | 'sessions';
      /** Sent twice: the second finds the telemetry guard the first left (Redis's fast path). */
      twice: boolean;
    }
  | { kind: 'advance'; ms: number }
  | {
      kind: 'create';
      format: number;
      models: number;
      region: 'eu' | 'us' | undefined;
      labels: LabelChoice;
      priority: 'premium' | 'standard' | 'unknown-class';
      transport: 'rest' | 'websocket';
      wait: boolean;
      strategy: 'packed' | 'spread';
      maxQueue: number;
      /** The gamer the session belongs to (none: a front-end's session), and that gamer's session limit. */
      owner: 'none' | 'gamer-a' | 'gamer-b';
      maxOwnerSessions: number | undefined;
      /** Round-trip times the gamer reported (a subset of the fleet's regions), or none. */
      latencies: Partial<Record<'eu' | 'us', number>> | undefined;
    }
  /**
   * Two requests for one format, the first restricted to some GPU models or (with `latencies`) to the
   * regions its latencies allow, the second not: queue passes must tell them apart.
   */
  | {
      kind: 'create-twins';
      format: number;
      models: number;
      strategy: 'packed' | 'spread';
      latencies: Partial<Record<'eu' | 'us', number>> | undefined;
    }
  | { kind: 'end'; pick: number; reason: 'released' | 'node-reported-ended' }
  | { kind: 'expire'; advance: number }
  | { kind: 'renew'; pick: number; extendMs: number }
  | { kind: 'drain'; node: number; deadlineMs: number }
  | { kind: 'undrain'; node: number }
  | { kind: 'set-state'; node: number; state: (typeof nodeStates)[number] }
  | { kind: 'migrate'; pick: number; strategy: 'packed' | 'spread' }
  | { kind: 'place-queued'; strategy: 'packed' | 'spread' }
  | { kind: 'remove'; node: number }
  | { kind: 'webhook'; key: number; result: number; settle: boolean; ttlMs: number }
  | { kind: 'session-reads'; pick: number }
  /** The callback outbox: claim due entries, then complete or reschedule the first one claimed. */
  | {
      kind: 'outbox';
      leaseMs: number;
      limit: number;
      next: 'complete' | 'retry' | 'nothing';
      delayMs: number;
    }
  /** A registration batch (an index past the fleet is a node of an unknown GPU model). */
  | { kind: 'register-batch'; nodes: Array<{ node: number; otherHost: boolean }> }
  /** A drain of several nodes in one step (an index past the fleet is a node that does not exist). */
  | { kind: 'drain-batch'; nodes: number[]; deadlineMs: number; onlyReady: boolean }
  | { kind: 'forget-webhook'; key: number };

/** Label sets a request may ask for: one key, none, or two keys in either insertion order. */
const labelChoices = {
  none: undefined,
  empty: {},
  gold: { tier: 'gold' },
  'gold-eu': { tier: 'gold', region: 'eu' },
  'eu-gold': { region: 'eu', tier: 'gold' },
} as const;
type LabelChoice = keyof typeof labelChoices;

const nodeIndex = fc.nat(fleetNodes.length - 1);

/** Latencies on and around the policies' caps (a tie between regions included), or anywhere. */
const latencyMs = fc.oneof(
  fc.constantFrom(20, 30, 50, 60, 80, 100, 101, 150),
  fc.integer({ min: 0, max: 200 }),
);

/**
 * The latency rules a sequence's stores share: none, the configured default, short policies whose
 * boundaries the sequence's clock crosses often, one policy; unreported regions allowed or not.
 */
export const latencyRules: fc.Arbitrary<LatencyRules> = fc.record({
  latencyPolicies: fc.constantFrom(
    [],
    [
      { maxLatencyMs: 50, forSeconds: 5 },
      { maxLatencyMs: 100, forSeconds: 20 },
    ],
    [
      { maxLatencyMs: 30, forSeconds: 1 },
      { maxLatencyMs: 80, forSeconds: 3 },
    ],
    [{ maxLatencyMs: 60, forSeconds: 2.5 }],
  ),
  allowUnreportedRegions: fc.boolean(),
});
const strategy = fc.constantFrom('packed' as const, 'spread' as const);

export const gpuSample: fc.Arbitrary<GpuSample> = fc.record({
  kind: fc.constantFrom<GpuSampleKind>(
    'load',
    'load',
    'load',
    'load',
    'load',
    'unknown',
    'hot',
    'throttled',
    'not-a-number',
  ),
  utilization: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 100 })),
  encoder: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 100 })),
  vramShare: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 100 })),
  encoderSessions: fc.option(fc.nat(9), { nil: null, freq: 3 }),
  memoryDelta: fc.constantFrom(0, 0, -512),
});

export const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('register' as const),
      node: nodeIndex,
      otherHost: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('telemetry' as const),
      node: nodeIndex,
      samples: fc.array(gpuSample, { minLength: 2, maxLength: 2 }),
      badIndex: fc.nat(9).map((n) => n === 0),
      // The probe's own sample time against arrival: behind (within and beyond the skew bound) or ahead.
      tsOffsetMs: fc.option(fc.integer({ min: -2_500, max: 500 }), { nil: null }),
      brief: fc.constantFrom('no' as const, 'brief' as const, 'sessions' as const),
      twice: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 7_000 }) }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      format: fc.nat(formats.length - 1),
      models: fc.nat(modelSets.length - 1),
      region: fc.constantFrom(undefined, undefined, 'eu' as const, 'us' as const),
      labels: fc.constantFrom<LabelChoice>('none', 'none', 'none', 'gold', 'empty', 'gold-eu', 'eu-gold'),
      priority: fc.constantFrom(
        'premium' as const,
        'standard' as const,
        'standard' as const,
        'standard' as const,
        'unknown-class' as const,
      ),
      transport: fc.constantFrom('rest' as const, 'websocket' as const),
      wait: fc.constantFrom(true, true, true, false),
      strategy,
      maxQueue: fc.constantFrom(2, 100),
      owner: fc.constantFrom('none' as const, 'gamer-a' as const, 'gamer-b' as const),
      maxOwnerSessions: fc.constantFrom(undefined, 1, 2),
      latencies: fc.option(fc.record({ eu: latencyMs, us: latencyMs }, { requiredKeys: [] }), {
        nil: undefined,
        freq: 3,
      }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('create-twins' as const),
      format: fc.nat(formats.length - 1),
      models: fc.integer({ min: 2, max: modelSets.length - 1 }),
      strategy,
      latencies: fc.option(fc.record({ eu: latencyMs, us: latencyMs }, { requiredKeys: [] }), {
        nil: undefined,
        freq: 2,
      }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('end' as const),
      pick: fc.nat(),
      reason: fc.constantFrom('released' as const, 'node-reported-ended' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('expire' as const),
      advance: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 70_000 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('renew' as const),
      pick: fc.nat(),
      extendMs: fc.integer({ min: 0, max: 60_000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('drain' as const),
      node: nodeIndex,
      deadlineMs: fc.integer({ min: 0, max: 5_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('undrain' as const), node: nodeIndex }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('set-state' as const),
      node: nodeIndex,
      state: fc.constantFrom(...nodeStates),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('migrate' as const), pick: fc.nat(), strategy }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('place-queued' as const), strategy }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), node: nodeIndex }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('webhook' as const),
      key: fc.nat(3),
      result: fc.nat(9),
      settle: fc.boolean(),
      ttlMs: fc.integer({ min: 1, max: 20_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('session-reads' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('outbox' as const),
      leaseMs: fc.integer({ min: 1, max: 5_000 }),
      limit: fc.integer({ min: 1, max: 3 }),
      next: fc.constantFrom('complete' as const, 'retry' as const, 'nothing' as const),
      delayMs: fc.integer({ min: 0, max: 3_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('register-batch' as const),
      nodes: fc.array(fc.record({ node: fc.nat(fleetNodes.length), otherHost: fc.boolean() }), {
        minLength: 1,
        maxLength: 3,
      }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('drain-batch' as const),
      nodes: fc.array(fc.nat(fleetNodes.length), { minLength: 1, maxLength: 3 }),
      deadlineMs: fc.integer({ min: 0, max: 5_000 }),
      onlyReady: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget-webhook' as const), key: fc.nat(3) }) },
);

export function nodeRegistration(index: number, otherHost: boolean): NodeRegistration {
  const node = fleetNodes[index] ?? {
    id: 'n-unknown-model',
    gpus: [{ model: 'Voodoo 5', count: 1 }],
    labels: {},
  };
  return {
    id: node.id,
    host: `${node.id}.${otherHost ? 'b' : 'a'}.render.test`,
    port: 7000,
    protocol: 'webrtc',
    gpus: node.gpus,
    labels: node.labels,
    ...(node.group ? { group: node.group } : {}),
    ...(node.orchestrator ? { orchestrator: { ...node.orchestrator } } : {}),
  };
}

export function gpuCount(index: number): number {
  return fleetNodes[index]!.gpus.reduce((total, entry) => total + entry.count, 0);
}

/** A telemetry report for a fleet node: one sample per GPU (the generated ones, cycled). */
export function telemetryReport(
  index: number,
  samples: GpuSample[],
  badIndex: boolean,
  ts?: number,
): TelemetryReport {
  const node = fleetNodes[index]!;
  const models = node.gpus.flatMap((entry) => Array.from({ length: entry.count }, () => entry.model));
  const gpus: GpuTelemetry[] = models.map((model, gpu) => {
    const sample = samples[gpu % samples.length]!;
    const memoryTotal = catalog.model(model).vramMiB + sample.memoryDelta;
    const temperatureGpu = sample.kind === 'hot' ? catalog.model(model).throttleTemperatureCelsius : 45;
    if (sample.kind === 'unknown') return { index: gpu, temperatureGpu, throttleActive: false };
    if (sample.kind === 'not-a-number') {
      // Not what JSON can carry, but what a store may be handed: a value that is no number is unknown.
      return { index: gpu, utilizationGpu: Number.NaN, memoryUsed: Number.POSITIVE_INFINITY, temperatureGpu };
    }
    return {
      index: gpu,
      utilizationGpu: sample.utilization,
      utilizationEncoder: sample.encoder,
      memoryUsed: Math.round((memoryTotal * sample.vramShare) / 100),
      memoryTotal,
      encoderSessions: sample.encoderSessions,
      temperatureGpu,
      throttleActive: sample.kind === 'throttled',
    };
  });
  if (badIndex) gpus.push({ index: gpus.length + 3, temperatureGpu: 45 });
  return ts === undefined ? { gpus } : { gpus, ts };
}

export type CreateOperation = Extract<Operation, { kind: 'create' }>;

/**
 * The two create operations of a `create-twins` step: restricted (to some models, or by latencies)
 * first, then the same format unrestricted.
 */
export function twins(op: Extract<Operation, { kind: 'create-twins' }>): [CreateOperation, CreateOperation] {
  const base = {
    kind: 'create' as const,
    format: op.format,
    region: undefined,
    labels: 'none' as const,
    priority: 'standard' as const,
    transport: 'rest' as const,
    wait: true,
    strategy: op.strategy,
    maxQueue: 100,
    owner: 'none' as const,
    maxOwnerSessions: undefined,
    latencies: undefined,
  };
  return op.latencies
    ? [
        { ...base, models: 0, latencies: op.latencies },
        { ...base, models: 0 },
      ]
    : [
        { ...base, models: op.models },
        { ...base, models: 0 },
      ];
}

export function requestSpec(id: string, op: CreateOperation): SessionSpec {
  const format = formats[op.format]!;
  const allowed = modelSets[op.models];
  const costs = Object.fromEntries(
    Object.entries(costsFor(format)).filter(([model]) => allowed === undefined || allowed.includes(model)),
  );
  const chosen = labelChoices[op.labels];
  const labels: Record<string, string> | undefined = chosen ? { ...chosen } : undefined;
  return sessionSpec(id, format, {
    priority: op.priority,
    transport: op.transport,
    owner: op.owner === 'none' ? null : op.owner,
    costs,
    ...(op.region ? { region: op.region } : {}),
    ...(labels ? { labels } : {}),
    ...(op.latencies ? { latencies: { ...op.latencies } } : {}),
  });
}

/** What a store call answered: its value, or the code of the VcaError it threw. */
export type Answer<T> = { ok: true; value: T } | { ok: false; code: string };

export async function answer<T>(call: () => Promise<T>): Promise<Answer<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    if (isVcaError(error)) return { ok: false, code: error.code };
    throw error;
  }
}

/** Where a session runs, as two stores can compare it. */
export function placementOf(session: SessionRecord | undefined): string | null {
  const placement = session?.placement;
  return placement ? `${placement.nodeId}#${placement.gpuIndex}` : null;
}

/** The parts of a session record both stores must agree on (id-keyed; the placement separately). */
export function sessionFacts(session: SessionRecord | undefined) {
  if (!session) return undefined;
  return {
    id: session.id,
    state: session.state,
    endReason: session.endReason,
    priority: session.priority,
    transport: session.transport,
    owner: session.owner,
    region: session.region ?? null,
    labels: session.labels ?? null,
    latencies: session.latencies ?? null,
    createdAt: session.createdAt,
    queuedAt: session.queuedAt,
    queueDeadline: session.queueDeadline,
    assignedAt: session.assignedAt,
    endedAt: session.endedAt,
    leaseExpiresAt: session.leaseExpiresAt,
    migrations: session.migrations,
    placement: session.placement,
  };
}

/** A node view as both stores must report it. */
export function nodeFacts(node: NodeView | undefined) {
  if (!node) return undefined;
  return {
    ...node,
    gpus: node.gpus.map((gpu) => ({ ...gpu })),
  };
}

/** The observable state of a store: nodes in listing order, the queue, the draining index, the audit. */
export async function snapshot(store: StateStore, sessionIds: readonly string[]) {
  const [nodes, positions, draining, audit, outbox] = await Promise.all([
    store.listNodes(),
    store.queuePositions(),
    store.drainingNodes(),
    store.audit(),
    store.outboxLength(),
  ]);
  const sessions = await Promise.all(sessionIds.map((id) => store.getSession(id)));
  return {
    nodes: nodes.map(nodeFacts),
    queue: [...positions.entries()].sort((a, b) => a[1] - b[1]),
    draining: draining.map((node) => node.id),
    outbox,
    audit: {
      liveSessions: audit.liveSessions,
      queuedSessions: audit.queuedSessions,
      gpus: audit.gpus
        .map((gpu) => ({
          gpu: `${gpu.nodeId}#${gpu.index}`,
          committed: gpu.committed,
          sum: gpu.sumOfSessions,
        }))
        .sort((a, b) => (a.gpu < b.gpu ? -1 : a.gpu > b.gpu ? 1 : 0)),
    },
    sessions: sessions.map(sessionFacts),
  };
}

// The placement oracle -------------------------------------------------------------------------------

const gpuCapacity = Math.floor(headroom.gpu * 1_000_000);
const encoderCapacity = Math.floor(headroom.encoder * 1_000_000);

interface Score {
  /** Free share left on the request's dominant axis after placing it (the packed/spread score). */
  left: number;
  /** True when the embedded index's grid surely covers the request in this GPU's cell (not a boundary cell). */
  sure: boolean;
}

/** Could `gpu` of `node` take `cost` now on every dimension (the exact check of both stores)? */
export function fits(node: NodeView, gpu: GpuView, cost: LoadVector): boolean {
  const { effective, capacity } = gpu;
  if (effective.gpu + cost.gpu > capacity.gpu) return false;
  if (effective.encoder + cost.encoder > capacity.encoder) return false;
  if (effective.vramMiB + cost.vramMiB > capacity.vramMiB) return false;
  if (effective.encoderSessions + cost.encoderSessions > capacity.encoderSessions) return false;
  if (node.encoderSessionLimit !== null) {
    const inUse = node.gpus.reduce((total, other) => total + other.effective.encoderSessions, 0);
    if (inUse + cost.encoderSessions > node.encoderSessionLimit) return false;
  }
  return true;
}

/**
 * The documented placement score: the dominant axis is render, or "stream" — the larger of the
 * encoder share and the VRAM share of the model (the tighter of free encoder and free VRAM).
 */
export function score(gpu: GpuView, cost: LoadVector): Score {
  const poolVram = headroom.vram * catalog.model(gpu.model).vramMiB;
  const gpuNeed = cost.gpu / gpuCapacity;
  const streamNeed = Math.max(cost.encoder / encoderCapacity, cost.vramMiB / poolVram);
  const gpuFree = (gpuCapacity - gpu.effective.gpu) / gpuCapacity;
  const streamFree = Math.min(
    (encoderCapacity - gpu.effective.encoder) / encoderCapacity,
    (gpu.capacity.vramMiB - gpu.effective.vramMiB) / poolVram,
  );
  const streamPrimary = streamNeed > gpuNeed;
  const [primaryFree, primaryNeed, secondaryFree, secondaryNeed] = streamPrimary
    ? [streamFree, streamNeed, gpuFree, gpuNeed]
    : [gpuFree, gpuNeed, streamFree, streamNeed];
  return {
    left: primaryFree - primaryNeed,
    sure:
      bucketOf(primaryFree) >= sureBucket(primaryNeed) &&
      bucketOf(secondaryFree) >= sureBucket(secondaryNeed),
  };
}

export interface OracleRequest {
  costs: Readonly<Record<string, LoadVector>>;
  region?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  exclude?: string | undefined;
}

/** Every GPU that may take the request now, with its score. */
export function candidates(nodes: readonly NodeView[], request: OracleRequest): Map<string, Score> {
  const result = new Map<string, Score>();
  for (const node of nodes) {
    if (request.exclude !== undefined && node.id === request.exclude) continue;
    if (request.region !== undefined && (node.labels.region ?? '') !== request.region) continue;
    if (request.labels && Object.entries(request.labels).some(([k, v]) => node.labels[k] !== v)) continue;
    for (const gpu of node.gpus) {
      const cost = request.costs[gpu.model];
      if (!gpu.eligible || !cost || !fits(node, gpu, cost)) continue;
      result.set(`${node.id}#${gpu.index}`, score(gpu, cost));
    }
  }
  return result;
}

/**
 * The GPUs that may take the request under its latency plan (null: none reported): those of the first
 * allowed region, in plan order, where any GPU may take it — the region both stores must pick in —
 * then, when the plan allows other regions, any region's.
 */
export function plannedCandidates(
  nodes: readonly NodeView[],
  request: OracleRequest,
  plan: LatencyPlan | null,
): Map<string, Score> {
  if (plan === null) return candidates(nodes, request);
  for (const region of plan.regions) {
    if (request.region !== undefined && region !== request.region) continue;
    const found = candidates(nodes, { ...request, region });
    if (found.size > 0) return found;
  }
  return plan.otherRegions ? candidates(nodes, request) : new Map();
}

/**
 * Two different picks for one decision: a tie within the embedded index's resolution (both fit, and
 * their scores differ by at most 2/64 of a GPU, or the exact pick sits in a boundary cell the index
 * only reads when no sure cell fits) — or a real divergence, described.
 */
export function judgeDifferentPicks(
  found: Map<string, Score>,
  embeddedPick: string,
  redisPick: string,
): string | null {
  const e = found.get(embeddedPick);
  const r = found.get(redisPick);
  if (!e) return `the embedded store picked ${embeddedPick}, which cannot take the session`;
  if (!r) return `the Redis store picked ${redisPick}, which cannot take the session`;
  if (process.env.VCA_DIFF_LAX) return null;
  if (Math.abs(e.left - r.left) <= 2 / axis + 1e-9) return null;
  if (!r.sure && e.sure) return null;
  return `different picks ${embeddedPick} (left ${e.left.toFixed(4)}) and ${redisPick} (left ${r.left.toFixed(4)})`;
}

/** Adds a placed session's cost to a GPU of the snapshot (the oracle's view during a queue pass). */
export function applyPlacement(nodes: NodeView[], session: SessionRecord): void {
  const placement = session.placement!;
  const gpu = nodes.find((node) => node.id === placement.nodeId)!.gpus[placement.gpuIndex]!;
  const c = gpu.committed;
  c.gpu += placement.cost.gpu;
  c.encoder += placement.cost.encoder;
  c.vramMiB += placement.cost.vramMiB;
  c.encoderSessions += placement.cost.encoderSessions;
  // A session just placed is pending: no sample shows it yet.
  const p = gpu.pending;
  p.gpu += placement.cost.gpu;
  p.encoder += placement.cost.encoder;
  p.vramMiB += placement.cost.vramMiB;
  p.encoderSessions += placement.cost.encoderSessions;
  // The rule, written out here rather than imported: max(committed, measured + pending), VRAM with the
  // reserve committed; an unknown measure counts as committed.
  const m = gpu.measured;
  const on = (committed: number, measured: number | null, pending: number) =>
    measured === null ? committed : Math.max(committed, measured + pending);
  gpu.effective = {
    gpu: on(c.gpu, m.gpu, p.gpu),
    encoder: on(c.encoder, m.encoder, p.encoder),
    vramMiB: on(c.vramMiB + gpu.reservedVramMiB, m.vramMiB, p.vramMiB),
    encoderSessions: on(c.encoderSessions, m.encoderSessions, p.encoderSessions),
  };
}
