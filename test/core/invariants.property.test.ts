/**
 * Property tests for the invariants the whole gateway rests on, driven through the embedded store
 * with a fake clock: random fleets, random telemetry, random interleavings of every store operation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canHostStreams, type LoadVector } from '../../src/cost/session-cost.js';
import { VcaError } from '../../src/errors.js';
import type { GpuTelemetry } from '../../src/fleet/telemetry.js';
import type { PlacementStrategy } from '../../src/placement/strategy.js';
import { type SessionRecord, sessionDeadline } from '../../src/sessions/session.js';
import type { GpuView, NodeView, SessionEnd } from '../../src/state/state-store.js';
import type { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import { createEmbeddedStore } from '../store/embedded-factory.js';
import {
  catalog,
  createOptions,
  expectInvariant,
  heavyFormat,
  registration,
  type SessionFormat,
  sessionSpec,
  staleAfterMs,
  temperatureMarginCelsius,
} from '../store/store-fixtures.js';

const formats: readonly SessionFormat[] = [
  { game: 'stardew-valley', resolution: '720p', fps: 30 },
  { game: 'stardew-valley', resolution: '1080p', fps: 60 },
  { game: 'valorant', resolution: '1440p', fps: 60 },
  { game: 'counter-strike-2', resolution: '1080p', fps: 144 },
  { game: 'fortnite', resolution: '1080p', fps: 60 },
  { game: 'cyberpunk-2077', resolution: '1080p', fps: 60 },
  { game: 'alan-wake-2', resolution: '1440p', fps: 60 },
];

const allModels = ['GRID K2', 'Tesla M60', 'T4', 'A10G', 'L4', 'L40S', 'RTX 4080 SUPER', 'H100'] as const;
const dataCentreModels = ['T4', 'A10G', 'L4', 'L40S'] as const;
const strategies: readonly PlacementStrategy[] = ['packed', 'spread'];
const zero: LoadVector = { gpu: 0, encoder: 0, vramMiB: 0, encoderSessions: 0 };
const dimensions = ['gpu', 'encoder', 'vramMiB', 'encoderSessions'] as const;

// ---------------------------------------------------------------------------------------------------
// Generators

const nodeShape = fc.record({
  models: fc.array(fc.constantFrom(...allModels), { minLength: 1, maxLength: 3 }),
  region: fc.constantFrom('eu', 'us'),
});
type NodeShape = { models: readonly string[]; region: string };

/** Mostly low, sometimes anything in [min, max]. */
function mostlyBelow(low: number, min: number, max: number) {
  return fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min, max: low }) },
    { weight: 1, arbitrary: fc.integer({ min, max }) },
  );
}

/** A GPU report: mostly healthy, sometimes loaded, hot, throttling, or missing values. */
const gpuSample = fc.record({
  utilizationGpu: fc.option(mostlyBelow(30, 0, 100), { nil: null }),
  utilizationEncoder: fc.option(mostlyBelow(30, 0, 100), { nil: null }),
  encoderSessions: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
  temperatureGpu: fc.option(mostlyBelow(70, 30, 95), { nil: null }),
  throttleActive: fc.oneof(
    { weight: 5, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
});
type GpuSample = Omit<GpuTelemetry, 'index'>;

const operation = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      format: fc.nat(formats.length - 1),
      premium: fc.boolean(),
      wait: fc.boolean(),
      strategy: fc.constantFrom(...strategies),
      region: fc.constantFrom(undefined, 'eu', 'us'),
      leaseMs: fc.integer({ min: 1_000, max: 30_000 }),
      queueMs: fc.integer({ min: 500, max: 20_000 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('end' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: mostlyBelow(2_000, 0, 8_000) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('renew' as const),
      picks: fc.array(fc.nat(), { maxLength: 4 }),
      leaseMs: fc.integer({ min: 0, max: 30_000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('drain' as const),
      node: fc.nat(),
      deadlineMs: fc.integer({ min: 0, max: 10_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('undrain' as const), node: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unhealthy' as const), node: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('migrate' as const),
      pick: fc.nat(),
      strategy: fc.constantFrom(...strategies),
      leaseMs: fc.integer({ min: 1_000, max: 30_000 }),
      queueMs: fc.integer({ min: 500, max: 20_000 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('telemetry' as const),
      node: fc.nat(),
      samples: fc.array(gpuSample, { minLength: 3, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), node: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('register' as const), shape: nodeShape }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('replay-register' as const),
      node: fc.nat(),
      conflicting: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('place-queued' as const),
      strategy: fc.constantFrom(...strategies),
      leaseMs: fc.integer({ min: 1_000, max: 30_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const) }) },
);
type Operation = typeof operation extends fc.Arbitrary<infer T> ? T : never;

const scenario = fc.record({
  fleet: fc.array(nodeShape, { minLength: 1, maxLength: 3 }),
  operations: fc.array(operation, { minLength: 1, maxLength: 60, size: 'max' }),
});

// ---------------------------------------------------------------------------------------------------
// A driver that applies operations to a store and reports every placement it makes

interface Placement {
  session: SessionRecord;
  /** The cluster as it was just before the operation that made the placement. */
  before: ReadonlyMap<string, NodeView>;
  now: number;
}

interface Observer {
  onEnd?(end: SessionEnd): void;
  /** `endSession` answered undefined: the session had already ended. */
  onEndRefused?(id: string): void;
  /** Called with every placement an operation made, in the order it made them. */
  onPlacements?(placements: Placement[]): void;
  afterOperation?(): Promise<void>;
}

class Driver {
  readonly store: EmbeddedStore = createEmbeddedStore();
  now = 0;
  /** The last instant expireSessions ran at. */
  lastExpiryAt = -1;
  readonly nodes: Array<{ id: string; shape: NodeShape }> = [];
  readonly sessions: string[] = [];
  private nextSession = 0;
  private nextNode = 0;

  constructor(private readonly observer: Observer) {}

  async register(shape: NodeShape, withTelemetry: boolean): Promise<void> {
    const id = `node-${this.nextNode++}`;
    const outcome = await this.store.registerNode(this.registrationOf(id, shape), this.now);
    expect(outcome.created).toBe(true);
    this.nodes.push({ id, shape });
    if (withTelemetry) {
      await this.store.recordTelemetry(
        id,
        { gpus: shape.models.map((_, index) => ({ index, temperatureGpu: 45 })) },
        this.now,
      );
    }
  }

  registrationOf(id: string, shape: NodeShape) {
    return registration(
      id,
      shape.models.map((model) => ({ model, count: 1 })),
      { region: shape.region },
    );
  }

  private node(pick: number) {
    return this.nodes.length === 0 ? undefined : this.nodes[pick % this.nodes.length];
  }

  private session(pick: number) {
    return this.sessions.length === 0 ? undefined : this.sessions[pick % this.sessions.length];
  }

  private async snapshot(): Promise<Map<string, NodeView>> {
    return new Map((await this.store.listNodes()).map((node) => [node.id, node]));
  }

  /** Runs `change`, expecting it either to succeed or to be refused as an illegal node transition. */
  private async nodeTransition(id: string, change: () => Promise<unknown>): Promise<void> {
    const before = await this.store.getNode(id);
    try {
      await change();
    } catch (error) {
      expect(error).toBeInstanceOf(VcaError);
      expect((error as VcaError).code).toBe('VCA_ERR_NODE_STATE');
      expect((await this.store.getNode(id))?.state).toBe(before?.state);
    }
  }

  async apply(op: Operation): Promise<void> {
    const store = this.store;
    switch (op.kind) {
      case 'create': {
        const id = `s-${this.nextSession++}`;
        const before = await this.snapshot();
        const format = formats[op.format]!;
        const outcome = await store.createSession(
          sessionSpec(id, format, { priority: op.premium ? 'premium' : 'standard', region: op.region }),
          createOptions(this.now, {
            strategy: op.strategy,
            waitMode: op.wait ? 'wait' : 'no-wait',
            maxQueueLength: 8,
            leaseExpiresAt: this.now + op.leaseMs,
            queueDeadline: this.now + op.queueMs,
          }),
        );
        if (outcome.kind === 'refused') {
          expect(await store.getSession(id)).toBeUndefined();
        } else {
          this.sessions.push(id);
        }
        if (outcome.kind === 'assigned')
          this.observer.onPlacements?.([{ session: outcome.session, before, now: this.now }]);
        break;
      }
      case 'end': {
        const id = this.session(op.pick);
        if (id === undefined) break;
        const end = await store.endSession(id, 'released', this.now);
        if (end) this.observer.onEnd?.(end);
        else this.observer.onEndRefused?.(id);
        break;
      }
      case 'advance': {
        this.now += op.ms;
        this.lastExpiryAt = this.now;
        for (const end of await store.expireSessions(this.now)) {
          expect(['lease-expired', 'queue-timeout']).toContain(end.session.endReason);
          this.observer.onEnd?.(end);
        }
        break;
      }
      case 'renew': {
        const ids = op.picks.map((pick) => this.session(pick)).filter((id) => id !== undefined);
        let live = 0;
        for (const id of ids) if ((await store.getSession(id))?.state !== 'ended') live++;
        expect(await store.renewLeases(ids, this.now + op.leaseMs)).toBe(live);
        break;
      }
      case 'drain': {
        const node = this.node(op.node);
        if (!node || !(await store.getNode(node.id))) break;
        await this.nodeTransition(node.id, async () => {
          const view = await store.setNodeState(node.id, 'draining', this.now, this.now + op.deadlineMs);
          expect(view.state).toBe(view.sessions === 0 ? 'drained' : 'draining');
        });
        break;
      }
      case 'undrain':
      case 'unhealthy': {
        const node = this.node(op.node);
        if (!node || !(await store.getNode(node.id))) break;
        const to = op.kind === 'undrain' ? 'ready' : 'unhealthy';
        await this.nodeTransition(node.id, () => store.setNodeState(node.id, to, this.now));
        break;
      }
      case 'migrate': {
        const id = this.session(op.pick);
        if (id === undefined) break;
        const before = await this.snapshot();
        const moved = await store.migrateSession(
          id,
          this.now,
          op.strategy,
          this.now + op.leaseMs,
          this.now + op.queueMs,
        );
        if (moved?.session.state === 'assigned') {
          expect(moved.session.placement!.nodeId).not.toBe(moved.from!.nodeId);
          this.observer.onPlacements?.([{ session: moved.session, before, now: this.now }]);
        }
        break;
      }
      case 'telemetry': {
        const node = this.node(op.node);
        if (!node || !(await store.getNode(node.id))) break;
        const gpus = node.shape.models.map((_, index) => ({ index, ...(op.samples[index] as GpuSample) }));
        await store.recordTelemetry(node.id, { gpus }, this.now);
        break;
      }
      case 'remove': {
        const node = this.node(op.node);
        if (!node) break;
        const view = await store.getNode(node.id);
        if (!view) {
          expect(await store.removeNode(node.id, this.now)).toBeUndefined();
        } else if (view.sessions > 0) {
          await expect(store.removeNode(node.id, this.now)).rejects.toMatchObject({
            code: 'VCA_ERR_NODE_STATE',
          });
        } else {
          expect((await store.removeNode(node.id, this.now))?.state).toBe('removed');
        }
        break;
      }
      case 'register':
        await this.register(op.shape, false);
        break;
      case 'replay-register': {
        const node = this.node(op.node);
        if (!node || !(await store.getNode(node.id))) break;
        const again = this.registrationOf(node.id, node.shape);
        if (op.conflicting) {
          await expect(
            store.registerNode({ ...again, port: again.port + 1 }, this.now),
          ).rejects.toMatchObject({
            code: 'VCA_ERR_NODE_CONFLICT',
          });
        } else {
          expect((await store.registerNode(again, this.now)).created).toBe(false);
        }
        break;
      }
      case 'place-queued': {
        const before = await this.snapshot();
        const placed = await store.placeQueued(this.now, op.strategy, {
          rest: op.leaseMs,
          websocket: op.leaseMs,
        });
        this.observer.onPlacements?.(placed.map((session) => ({ session, before, now: this.now })));
        break;
      }
      case 'sweep':
        await store.sweepStale(this.now);
        break;
    }
    await this.observer.afterOperation?.();
  }
}

function gpuOf(
  nodes: ReadonlyMap<string, NodeView>,
  session: SessionRecord,
): { node: NodeView; gpu: GpuView } {
  const node = nodes.get(session.placement!.nodeId)!;
  return { node, gpu: node.gpus[session.placement!.gpuIndex]! };
}

function key(nodeId: string, index: number): string {
  return `${nodeId}#${index}`;
}

// ---------------------------------------------------------------------------------------------------

describe('invariant: committed load equals the sum of live session costs, and every session ends once', () => {
  it('holds under random interleavings of every store operation', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ fleet, operations }) => {
        const ended = new Set<string>();
        const driver: Driver = new Driver({
          onEnd(end) {
            const id = end.session.id;
            expect(driver.sessions).toContain(id);
            expect(ended.has(id), `session ${id} ended twice`).toBe(false);
            expect(end.session.state).toBe('ended');
            ended.add(id);
          },
          onEndRefused(id) {
            expect(ended.has(id), `live session ${id} refused to end`).toBe(true);
          },
          async afterOperation() {
            await expectInvariant(driver.store);
            // Independently of the store's own audit: sum the placements of the sessions still live.
            const expected = new Map<string, LoadVector>();
            const counts = new Map<string, number>();
            for (const id of driver.sessions) {
              const session = (await driver.store.getSession(id))!;
              if (ended.has(id)) {
                expect(session === undefined || session.state === 'ended').toBe(true);
                continue;
              }
              expect(session.state).not.toBe('ended');
              // Expiry missed nothing: every live session's deadline lies after the last expiry run.
              expect(sessionDeadline(session)).toBeGreaterThan(driver.lastExpiryAt);
              if (session.state !== 'assigned') continue;
              const at = key(session.placement!.nodeId, session.placement!.gpuIndex);
              const sum = expected.get(at) ?? { ...zero };
              for (const d of dimensions) sum[d] += session.placement!.cost[d];
              expected.set(at, sum);
              counts.set(at, (counts.get(at) ?? 0) + 1);
            }
            for (const node of await driver.store.listNodes()) {
              for (const gpu of node.gpus) {
                expect(gpu.committed).toEqual(expected.get(key(node.id, gpu.index)) ?? zero);
                expect(gpu.sessions).toBe(counts.get(key(node.id, gpu.index)) ?? 0);
              }
            }
          },
        });
        for (const shape of fleet) await driver.register(shape, true);
        for (const op of operations) await driver.apply(op);

        // Ending everything still live releases everything: each exactly once, nothing leaks.
        for (const id of driver.sessions) {
          const end = await driver.store.endSession(id, 'shutdown', driver.now);
          expect(end === undefined).toBe(ended.has(id));
          if (end) ended.add(id);
          expect(await driver.store.endSession(id, 'shutdown', driver.now)).toBeUndefined();
        }
        const audit = await driver.store.audit();
        expect(audit.liveSessions).toBe(0);
        expect(audit.queuedSessions).toBe(0);
        for (const gpu of audit.gpus) {
          expect(gpu.committed).toEqual(zero);
          expect(gpu.sessions).toBe(0);
        }
      }),
      { numRuns: 200 },
    );
  });
});

/** Effective load of a GPU after `committed` changed: max(committed, measured), as the store defines it. */
function effectiveWith(gpu: GpuView, committed: LoadVector): LoadVector {
  return {
    gpu: Math.max(committed.gpu, gpu.measured.gpu ?? 0),
    encoder: Math.max(committed.encoder, gpu.measured.encoder ?? 0),
    vramMiB: Math.max(committed.vramMiB, gpu.measured.vramMiB ?? 0),
    encoderSessions: Math.max(committed.encoderSessions, gpu.measured.encoderSessions ?? 0),
  };
}

describe('invariant: placement never commits load beyond the headroom capacity', () => {
  it('fits every placement under capacity on every dimension, and the host encoder limit', async () => {
    let placements = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ fleet, operations }) => {
        const driver: Driver = new Driver({
          onPlacements(made) {
            // One pass may place several sessions; replay them on a copy of the committed load.
            const committed = new Map<string, LoadVector>();
            for (const { session, before } of made) {
              placements++;
              const { node, gpu } = gpuOf(before, session);
              const at = key(node.id, gpu.index);
              const current = committed.get(at) ?? { ...gpu.committed };
              const effective = effectiveWith(gpu, current);
              const cost = session.placement!.cost;
              for (const d of dimensions) {
                expect(effective[d] + cost[d], `${d} on ${at}`).toBeLessThanOrEqual(gpu.capacity[d]);
              }
              if (node.encoderSessionLimit !== null) {
                let inUse = 0;
                for (const other of node.gpus) {
                  const otherCommitted = committed.get(key(node.id, other.index)) ?? other.committed;
                  inUse += effectiveWith(other, otherCommitted).encoderSessions;
                }
                expect(inUse + cost.encoderSessions).toBeLessThanOrEqual(node.encoderSessionLimit);
              }
              for (const d of dimensions) current[d] += cost[d];
              committed.set(at, current);
            }
          },
          async afterOperation() {
            for (const node of await driver.store.listNodes()) {
              let encoderSessions = 0;
              for (const gpu of node.gpus) {
                for (const d of dimensions) expect(gpu.committed[d]).toBeLessThanOrEqual(gpu.capacity[d]);
                encoderSessions += gpu.committed.encoderSessions;
              }
              if (node.encoderSessionLimit !== null)
                expect(encoderSessions).toBeLessThanOrEqual(node.encoderSessionLimit);
            }
          },
        });
        for (const shape of fleet) await driver.register(shape, true);
        for (const op of operations) await driver.apply(op);
      }),
      { numRuns: 150 },
    );
    // The property says something only if the random scenarios do place sessions.
    expect(placements).toBeGreaterThan(200);
  });
});

describe('invariant: nothing is placed on a GPU that may not take new sessions', () => {
  it('never places on draining, unhealthy, stale, throttling, too hot or NVENC-less GPUs', async () => {
    let placements = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ fleet, operations }) => {
        const driver = new Driver({
          onPlacements(made) {
            for (const { session, before, now } of made) {
              placements++;
              const { node, gpu } = gpuOf(before, session);
              const model = catalog.model(gpu.model);
              expect(node.state).toBe('ready');
              expect(canHostStreams(model)).toBe(true);
              expect(gpu.stale).toBe(false);
              expect(gpu.telemetryAt).not.toBeNull();
              expect(gpu.telemetryAt!).toBeGreaterThanOrEqual(now - staleAfterMs);
              expect(gpu.throttleActive).toBe(false);
              if (gpu.temperatureCelsius !== null) {
                expect(gpu.temperatureCelsius).toBeLessThan(
                  model.throttleTemperatureCelsius - temperatureMarginCelsius,
                );
              }
              if (session.region !== undefined) expect(node.labels.region).toBe(session.region);
            }
          },
        });
        for (const shape of fleet) await driver.register(shape, true);
        for (const op of operations) await driver.apply(op);
      }),
      { numRuns: 150 },
    );
    // The property says something only if the random scenarios do place sessions.
    expect(placements).toBeGreaterThan(200);
  });
});

describe('invariant: packed uses no more GPUs than spread', () => {
  it('for the same arrivals on identical fleets, with no departures', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...dataCentreModels),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4, size: 'max' }),
        fc.array(fc.nat(formats.length - 1), { minLength: 1, maxLength: 40, size: 'max' }),
        async (model, gpusPerNode, arrivals) => {
          const gpusUsed = async (strategy: PlacementStrategy) => {
            const store = createEmbeddedStore();
            for (const [n, count] of gpusPerNode.entries()) {
              await store.registerNode(registration(`node-${n}`, [{ model, count }]), 0);
              await store.recordTelemetry(
                `node-${n}`,
                { gpus: Array.from({ length: count }, (_, index) => ({ index, temperatureGpu: 45 })) },
                0,
              );
            }
            for (const [i, format] of arrivals.entries()) {
              await store.createSession(
                sessionSpec(`s-${i}`, formats[format]!),
                createOptions(i, { strategy, waitMode: 'no-wait' }),
              );
            }
            await expectInvariant(store);
            return (await store.audit()).gpus.filter((gpu) => gpu.sessions > 0).length;
          };
          expect(await gpusUsed('packed')).toBeLessThanOrEqual(await gpusUsed('spread'));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('invariant: the queue serves premium before standard, first come first served within a class', () => {
  it('assigns identical queued requests in that order as capacity frees one slot at a time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 12, size: 'max' }),
        fc.constantFrom(...strategies),
        async (nodeCount, premiumFlags, strategy) => {
          const store = createEmbeddedStore();
          let now = 0;
          for (let n = 0; n < nodeCount; n++) {
            await store.registerNode(registration(`node-${n}`), now);
            await store.recordTelemetry(`node-${n}`, { gpus: [{ index: 0, temperatureGpu: 45 }] }, now);
          }
          // One heavy session fills an L4: hold every GPU, then queue identical requests.
          const running: string[] = [];
          for (let n = 0; n < nodeCount; n++) {
            const outcome = await store.createSession(
              sessionSpec(`holder-${n}`, heavyFormat),
              createOptions(now),
            );
            expect(outcome.kind).toBe('assigned');
            running.push(`holder-${n}`);
          }
          const queued = premiumFlags.map((premium, i) => ({ id: `q-${i}`, premium }));
          for (const { id, premium } of queued) {
            now += 10;
            const outcome = await store.createSession(
              sessionSpec(id, heavyFormat, { priority: premium ? 'premium' : 'standard' }),
              createOptions(now, { strategy }),
            );
            expect(outcome.kind).toBe('queued');
          }
          const expected = [...queued.filter((q) => q.premium), ...queued.filter((q) => !q.premium)].map(
            (q) => q.id,
          );
          expect([...(await store.queuePositions())]).toEqual(expected.map((id, i) => [id, i + 1]));

          const served: string[] = [];
          while (served.length < expected.length) {
            now += 10;
            await store.endSession(running.shift()!, 'released', now);
            const placed = await store.placeQueued(now, strategy, { rest: 30_000, websocket: 30_000 });
            expect(placed).toHaveLength(1);
            served.push(placed[0]!.id);
            running.push(placed[0]!.id);
            await expectInvariant(store);
          }
          expect(served).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });
});
