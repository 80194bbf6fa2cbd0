/**
 * Differential, model-based test of the two stores: random sequences of every store operation run
 * against the embedded store and the Redis store side by side, from the same clock, and after every
 * step both must have answered the same (assigned / queued with the same position / refused for the
 * same reason, the same error code, the same sessions ended or placed) and must show the same
 * observable state (nodes and their GPUs with committed and measured load, eligibility and state; the
 * queue in order; the draining index; every session's record).
 *
 * Which GPU a session gets must be the same wherever the best fit is unique. Where it is not — two
 * GPUs within the embedded index's resolution of 1/64 of a GPU (see the oracle in
 * differential-model.ts) — either pick is right; the test then ends that session in both stores,
 * which brings them back to the same state, and goes on.
 *
 * Runs VCA_DIFFERENTIAL_RUNS sequences (default 1000) from seed VCA_DIFFERENTIAL_SEED (default fixed,
 * so every CI run checks the same sequences); fast-check shrinks a failure to a short sequence and
 * prints its seed and path for replay.
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { type LatencyRules, latencyPlan } from '../../src/placement/latency-policy.js';
import type { SessionRecord } from '../../src/sessions/session.js';
import type { CreateSessionOutcome, StateStore } from '../../src/state/state-store.js';
import type { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import {
  answer,
  applyPlacement,
  fleetNodes,
  type GpuSample,
  gpuSample,
  judgeDifferentPicks,
  latencyRules,
  nodeRegistration,
  type Operation,
  operation,
  placementOf,
  plannedCandidates,
  requestSpec,
  sessionFacts,
  snapshot,
  telemetryReport,
  twins,
} from './differential-model.js';
import { createEmbeddedStore } from './embedded-factory.js';
import { createTestRedisStore } from './redis-factory.js';
import { leaseMs, queueWaitMs } from './store-fixtures.js';

const runs = Number(process.env.VCA_DIFFERENTIAL_RUNS ?? 1000);
const seed = Number(process.env.VCA_DIFFERENTIAL_SEED ?? 20_261_129);
/**
 * Pending-aware load under test: a session stays pending for 3 steps after its placement (steps are
 * 100 ms apart), probe clocks are trusted 1.5 s back, and L4s reserve at least 400 MiB of VRAM.
 */
const pendingRules = { settleMs: 300, maxClockSkewMs: 1_500, vramReserveMiB: { L4: 400 } };

let server: RedisServer;
let client: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url, { lazyConnect: true });
  await client.connect();
});

afterAll(async () => {
  await client?.quit().catch(() => undefined);
  await server?.stop();
});

const stats = {
  sequences: 0,
  steps: 0,
  ties: 0,
  assigned: 0,
  queued: 0,
  refused: 0,
  placedFromQueue: 0,
  errors: 0,
  /** Creations that reported latencies, and those of them a cap kept off every free GPU (queued). */
  withLatencies: 0,
  queuedWithLatencies: 0,
};

/** The two stores under test and what the sequence knows. */
class Pair {
  now = 1_000;
  /** Sessions created and not refused, in creation order. */
  readonly ids: string[] = [];
  /** Sessions ended to re-align the stores after a tie: their records differ by design. */
  readonly realigned = new Set<string>();

  constructor(
    readonly embedded: EmbeddedStore,
    readonly redis: RedisStore,
    /** The latency rules both stores were built with (the oracle's too). */
    readonly rules: LatencyRules,
  ) {}

  get stores(): [StateStore, StateStore] {
    return [this.embedded, this.redis];
  }

  comparable(): string[] {
    return this.ids.filter((id) => !this.realigned.has(id));
  }

  pick(index: number): string | undefined {
    const live = this.comparable();
    return live.length > 0 ? live[index % live.length] : undefined;
  }

  /** Runs `call` on both stores; both must succeed, or both fail with the same error code. */
  async both<T>(call: (store: StateStore) => Promise<T>): Promise<[T, T] | undefined> {
    const e = await answer(() => call(this.embedded));
    const r = await answer(() => call(this.redis));
    expect(r.ok ? 'ok' : r.code, 'Redis answered like the embedded store').toBe(e.ok ? 'ok' : e.code);
    if (!e.ok || !r.ok) {
      stats.errors++;
      return undefined;
    }
    return [e.value, r.value];
  }

  async sweep(): Promise<void> {
    await this.both((store) => store.sweepStale(this.now));
  }

  /** Ends the sessions in both stores and stops comparing their records. */
  async realign(ids: Iterable<string>): Promise<void> {
    stats.ties++;
    for (const id of ids) {
      this.realigned.add(id);
      for (const store of this.stores) await store.endSession(id, 'released', this.now);
    }
  }
}

function outcomeFacts(outcome: CreateSessionOutcome) {
  if (outcome.kind === 'refused') return { kind: outcome.kind, reason: outcome.reason };
  if (outcome.kind === 'queued') return { kind: outcome.kind, position: outcome.position };
  return { kind: outcome.kind };
}

/** Sessions ended together, in the order the store ended them, each with the node its end drained. */
function endedFacts(ends: Array<{ session: SessionRecord; drainedNode: { id: string } | null }>) {
  return ends.map((end) => `${end.session.id}:${end.session.endReason}:${end.drainedNode?.id ?? ''}`);
}

async function create(pair: Pair, op: Extract<Operation, { kind: 'create' }>, id: string): Promise<void> {
  await pair.sweep();
  const before = await pair.embedded.listNodes();
  const options = {
    now: pair.now,
    strategy: op.strategy,
    waitMode: op.wait ? ('wait' as const) : ('no-wait' as const),
    maxQueueLength: op.maxQueue,
    leaseExpiresAt: pair.now + leaseMs,
    queueDeadline: pair.now + queueWaitMs,
    ...(op.maxOwnerSessions === undefined ? {} : { maxOwnerSessions: op.maxOwnerSessions }),
  };
  const answers = await pair.both((store) => store.createSession(requestSpec(id, op), options));
  if (!answers) return;
  const [e, r] = answers;
  expect(outcomeFacts(r), 'create: same outcome').toEqual(outcomeFacts(e));
  stats[e.kind]++;
  if (op.latencies) {
    stats.withLatencies++;
    if (e.kind === 'queued') stats.queuedWithLatencies++;
  }
  if (e.kind === 'refused' || r.kind === 'refused') return;
  pair.ids.push(id);
  const pe = placementOf(e.session);
  const pr = placementOf(r.session);
  if (pe === pr) return;
  const spec = requestSpec(id, op);
  const plan = latencyPlan({ latencies: spec.latencies, createdAt: pair.now }, pair.now, pair.rules);
  const verdict = judgeDifferentPicks(plannedCandidates(before, spec, plan), pe!, pr!);
  expect(verdict, 'create: the same GPU where the best fit is unique').toBeNull();
  await pair.realign([id]);
}

async function migrate(pair: Pair, op: Extract<Operation, { kind: 'migrate' }>): Promise<void> {
  const id = pair.pick(op.pick);
  if (!id) return;
  await pair.sweep();
  const before = await pair.embedded.listNodes();
  const session = await pair.embedded.getSession(id);
  const answers = await pair.both((store) =>
    store.migrateSession(id, pair.now, op.strategy, pair.now + leaseMs, pair.now + queueWaitMs),
  );
  if (!answers) return;
  const [e, r] = answers;
  expect(r === undefined, 'migrate: same applicability').toBe(e === undefined);
  if (!e || !r) return;
  expect(r.session.state, 'migrate: placed or queued alike').toBe(e.session.state);
  expect(r.drainedNode?.id ?? null, 'migrate: same node drained').toBe(e.drainedNode?.id ?? null);
  const pe = placementOf(e.session);
  const pr = placementOf(r.session);
  if (pe === pr) return;
  const verdict = judgeDifferentPicks(
    plannedCandidates(
      before,
      {
        costs: session!.costs,
        region: session!.region,
        labels: session!.labels,
        exclude: e.from?.nodeId,
      },
      latencyPlan(session!, pair.now, pair.rules),
    ),
    pe!,
    pr!,
  );
  expect(verdict, 'migrate: the same GPU where the best fit is unique').toBeNull();
  await pair.realign([id]);
}

async function placeQueued(pair: Pair, op: Extract<Operation, { kind: 'place-queued' }>): Promise<void> {
  await pair.sweep();
  const before = await pair.embedded.listNodes();
  const answers = await pair.both((store) =>
    store.placeQueued(pair.now, op.strategy, { rest: leaseMs, websocket: 2 * leaseMs }),
  );
  if (!answers) return;
  const [e, r] = answers;
  stats.placedFromQueue += e.length;
  for (let i = 0; i < Math.max(e.length, r.length); i++) {
    const se = e[i];
    const sr = r[i];
    expect(sr?.id, `place-queued: the same session placed ${i + 1}th`).toBe(se?.id);
    if (placementOf(se) === placementOf(sr)) {
      applyPlacement(before, se!);
      continue;
    }
    const verdict = judgeDifferentPicks(
      plannedCandidates(
        before,
        { costs: se!.costs, region: se!.region, labels: se!.labels },
        latencyPlan(se!, pair.now, pair.rules),
      ),
      placementOf(se)!,
      placementOf(sr)!,
    );
    expect(verdict, 'place-queued: the same GPU where the best fit is unique').toBeNull();
    await pair.realign(new Set([...e.slice(i), ...r.slice(i)].map((session) => session.id)));
    return;
  }
}

async function apply(pair: Pair, op: Operation, step: number): Promise<void> {
  const nodeId = 'node' in op ? fleetNodes[op.node]!.id : '';
  switch (op.kind) {
    case 'register': {
      const answers = await pair.both((store) =>
        store.registerNode(nodeRegistration(op.node, op.otherHost), pair.now),
      );
      if (answers) expect(answers[1].created).toBe(answers[0].created);
      break;
    }
    case 'telemetry': {
      const report = telemetryReport(
        op.node,
        op.samples,
        op.badIndex,
        op.tsOffsetMs === null ? undefined : pair.now + op.tsOffsetMs,
      );
      for (let time = 0; time < (op.twice ? 2 : 1); time++) {
        if (op.brief === 'no') {
          await pair.both((store) => store.recordTelemetry(nodeId, report, pair.now));
          continue;
        }
        const sessions = op.brief === 'sessions';
        const answers = await pair.both((store) =>
          store.reportTelemetry(nodeId, report, pair.now, { sessions }),
        );
        if (!answers) continue;
        const [e, r] = answers;
        expect({
          ...r,
          movedNode: r.movedNode?.id ?? null,
          sessions: r.sessions?.map(sessionFacts) ?? null,
        }).toEqual({
          ...e,
          movedNode: e.movedNode?.id ?? null,
          sessions: e.sessions?.map(sessionFacts) ?? null,
        });
        if (e.movedNode) expect(r.movedNode?.gpus).toEqual(e.movedNode.gpus);
      }
      break;
    }
    case 'advance':
      pair.now += op.ms;
      await pair.sweep();
      break;
    case 'create':
      await create(pair, op, `s${step}`);
      break;
    case 'create-twins': {
      const [restricted, open] = twins(op);
      await create(pair, restricted, `s${step}r`);
      await create(pair, open, `s${step}o`);
      break;
    }
    case 'end': {
      const id = pair.pick(op.pick);
      if (!id) break;
      const answers = await pair.both((store) => store.endSession(id, op.reason, pair.now));
      if (!answers) break;
      const [e, r] = answers;
      expect(r === undefined).toBe(e === undefined);
      if (e && r) {
        expect(sessionFacts(r.session)).toEqual(sessionFacts(e.session));
        expect(r.drainedNode?.id ?? null).toBe(e.drainedNode?.id ?? null);
        expect(r.queueWaiting).toBe(e.queueWaiting);
      }
      break;
    }
    case 'expire': {
      pair.now += op.advance;
      const answers = await pair.both((store) => store.expireSessions(pair.now));
      if (answers)
        expect(endedFacts(answers[1]), 'expire: the same sessions ended').toEqual(endedFacts(answers[0]));
      break;
    }
    case 'renew': {
      const ids = pair
        .comparable()
        .slice(op.pick % Math.max(1, pair.ids.length))
        .slice(0, 3);
      const answers = await pair.both((store) => store.renewLeases(ids, pair.now + op.extendMs));
      if (answers) expect(answers[1]).toBe(answers[0]);
      break;
    }
    case 'drain':
      await pair.both((store) => store.setNodeState(nodeId, 'draining', pair.now, pair.now + op.deadlineMs));
      break;
    case 'undrain':
      await pair.both((store) => store.setNodeState(nodeId, 'ready', pair.now));
      break;
    case 'set-state':
      await pair.both((store) => store.setNodeState(nodeId, op.state, pair.now));
      break;
    case 'migrate':
      await migrate(pair, op);
      break;
    case 'place-queued':
      await placeQueued(pair, op);
      break;
    case 'remove': {
      const answers = await pair.both((store) => store.removeNode(nodeId, pair.now));
      if (answers) expect(answers[1]?.id ?? null).toBe(answers[0]?.id ?? null);
      break;
    }
    case 'webhook': {
      const key = `delivery-${op.key}`;
      if (op.settle) {
        await pair.both((store) => store.settleWebhook(key, { settled: op.result }, op.ttlMs, pair.now));
      } else {
        const answers = await pair.both((store) =>
          store.rememberWebhook(key, { claimed: op.result }, op.ttlMs, pair.now),
        );
        if (answers) expect(answers[1]).toEqual(answers[0]);
      }
      break;
    }
    case 'outbox': {
      const answers = await pair.both((store) => store.claimOutbox(pair.now, op.leaseMs, op.limit));
      if (!answers) break;
      expect(answers[1], 'outbox: the same entries claimed').toEqual(answers[0]);
      const first = answers[0][0];
      if (!first || op.next === 'nothing') break;
      const settled = await pair.both((store) =>
        op.next === 'complete'
          ? store.completeOutbox(first.id)
          : store.retryOutbox(first.id, first.attempts, pair.now + op.delayMs, 'HTTP 503'),
      );
      if (settled) expect(settled[1]).toBe(settled[0]);
      break;
    }
    case 'register-batch': {
      const batch = op.nodes.map((entry) => nodeRegistration(entry.node, entry.otherHost));
      const answers = await pair.both((store) => store.registerNodes(batch, pair.now));
      if (answers)
        expect(answers[1].map((entry) => entry.created)).toEqual(answers[0].map((entry) => entry.created));
      break;
    }
    case 'drain-batch': {
      const ids = op.nodes.map((index) => fleetNodes[index]?.id ?? 'ghost-node');
      const options = op.onlyReady ? { onlyFrom: ['ready' as const] } : undefined;
      await pair.both((store) => store.drainNodes(ids, pair.now, pair.now + op.deadlineMs, options));
      break;
    }
    case 'forget-webhook':
      await pair.both((store) => store.forgetWebhook(`delivery-${op.key}`));
      break;
    case 'session-reads': {
      const node = fleetNodes[op.pick % fleetNodes.length]!.id;
      const answers = await pair.both((store) => store.sessionsOnNode(node));
      if (answers) {
        const ids = (sessions: SessionRecord[]) => sessions.map((session) => session.id).sort();
        expect(ids(answers[1]), `sessions on ${node}`).toEqual(ids(answers[0]));
      }
      break;
    }
  }
}

/** Every sequence starts from the whole fleet registered and reporting (the operations may remove it). */
async function startFleet(pair: Pair, samples: GpuSample[]): Promise<void> {
  for (const [index] of fleetNodes.entries()) {
    await pair.both((store) => store.registerNode(nodeRegistration(index, false), pair.now));
    await pair.both((store) =>
      store.recordTelemetry(
        fleetNodes[index]!.id,
        telemetryReport(index, samples.slice(index * 2, index * 2 + 2), false),
        pair.now,
      ),
    );
  }
}

async function runSequence(
  requireTelemetry: boolean,
  rules: LatencyRules,
  samples: GpuSample[],
  operations: Operation[],
): Promise<void> {
  const embedded = createEmbeddedStore({ requireTelemetry, ...pendingRules, ...rules });
  const redis = await createTestRedisStore(client, { requireTelemetry, ...pendingRules, ...rules });
  const pair = new Pair(embedded, redis, rules);
  stats.sequences++;
  try {
    await startFleet(pair, samples);
    for (const [step, op] of operations.entries()) {
      pair.now += 100;
      try {
        await apply(pair, op, step);
        const ids = pair.comparable();
        const [e, r] = await Promise.all([snapshot(embedded, ids), snapshot(redis, ids)]);
        expect(r, 'the same observable state').toEqual(e);
      } catch (error) {
        (error as Error).message = `step ${step} ${JSON.stringify(op)}: ${(error as Error).message}`;
        throw error;
      }
      stats.steps++;
    }
  } finally {
    await redis.close();
    await client.flushall();
  }
}

describe('stores: differential (embedded vs Redis)', () => {
  it(`answer and look the same after every step of ${runs} random operation sequences`, async () => {
    await fc.assert(
      fc.asyncProperty(
        // Most sequences as the gateway runs by default; some with nodes ready before any telemetry.
        fc.constantFrom(true, true, true, false),
        latencyRules,
        fc.array(gpuSample, { minLength: 2 * fleetNodes.length, maxLength: 2 * fleetNodes.length }),
        fc.array(operation, { minLength: 1, maxLength: 60, size: 'max' }),
        runSequence,
      ),
      { numRuns: runs, seed, endOnFailure: false },
    );
    console.info(`differential: ${JSON.stringify(stats)}`);
    expect(stats.steps).toBeGreaterThan(runs * 10);
  }, 600_000);
});
