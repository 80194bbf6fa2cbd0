/**
 * The store contract: what every StateStore implementation must do, written against the interface
 * alone so the embedded store and the Redis store run the very same suite. Every scenario drives a
 * fake clock (explicit `now` numbers) and ends by checking that committed load equals the sum of the
 * live sessions' costs on every GPU.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VcaError } from '../../src/errors.js';
import type { LatencyRules } from '../../src/placement/latency-policy.js';
import type { StateStore } from '../../src/state/state-store.js';
import {
  costsFor,
  createOptions,
  expectInvariant,
  healthyReport,
  heavyFormat,
  leaseMs,
  lightFormat,
  queueWaitMs,
  readyNode,
  registration,
  sessionSpec,
  staleAfterMs,
} from './store-fixtures.js';

const heavyOnL4 = costsFor(heavyFormat).L4!;
const lightOnL4 = costsFor(lightFormat).L4!;

/** `createStore`: a store with the default options, or with these latency rules. */
export function describeStoreContract(
  name: string,
  createStore: (rules?: LatencyRules) => Promise<StateStore> | StateStore,
  cleanup?: (store: StateStore) => Promise<void>,
): void {
  describe(`store contract: ${name}`, () => {
    let store: StateStore;

    beforeEach(async () => {
      store = await createStore();
    });

    afterEach(async () => {
      if (cleanup) await cleanup(store);
      else await store.close();
    });

    async function gpu(nodeId: string, index = 0) {
      const node = await store.getNode(nodeId);
      return node!.gpus[index]!;
    }

    async function expectRejectsWithCode(promise: Promise<unknown>, code: string) {
      const error = await promise.then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(VcaError);
      expect((error as VcaError).code).toBe(code);
    }

    describe('node registration and telemetry', () => {
      it('registers a node once and treats a replay of the same registration as a no-op', async () => {
        const first = await store.registerNode(registration('node-a'), 0);
        const replay = await store.registerNode(registration('node-a'), 500);
        expect(first.created).toBe(true);
        expect(replay.created).toBe(false);
        expect(replay.node.registeredAt).toBe(0);
        expect(await store.listNodes()).toHaveLength(1);
        await expectInvariant(store);
      });

      it('refuses to re-register a live node id with another definition', async () => {
        await store.registerNode(registration('node-a'), 0);
        await expectRejectsWithCode(
          store.registerNode(registration('node-a', [{ model: 'L4', count: 2 }]), 10),
          'VCA_ERR_NODE_CONFLICT',
        );
        await expectRejectsWithCode(
          store.registerNode({ ...registration('node-a'), host: 'elsewhere.render.test' }, 10),
          'VCA_ERR_NODE_CONFLICT',
        );
        expect((await store.getNode('node-a'))!.gpus).toHaveLength(1);
        await expectInvariant(store);
      });

      it('keeps the orchestrator membership a node registered with, and shows none for a node without', async () => {
        const membership = {
          kind: 'heat' as const,
          stackId: '8a1f0c52-9b0e-4b7a-a2d4-5a7d0c3e1f10',
          group: 'vca-asg',
          member: 'x3kq7mbu4f2c',
          serverId: 'f0e1d2c3-b4a5-4697-8877-665544332211',
          createdAt: '2026-11-19T10:35:59Z',
        };
        const failed = {
          ...membership,
          member: 'aa00zz11bb22',
          createdAt: '2026-11-19T10:36:00Z',
          failed: true,
        };
        await store.registerNode({ ...registration('node-a'), orchestrator: membership }, 0);
        await store.registerNodes(
          [{ ...registration('node-b'), orchestrator: failed }, registration('node-c')],
          0,
        );
        // A replay with other membership is a replay: the first registration's membership stays.
        const replay = await store.registerNode(
          { ...registration('node-a'), orchestrator: { ...membership, member: 'changed' } },
          10,
        );
        expect(replay.created).toBe(false);
        expect(replay.node.orchestrator).toEqual(membership);
        expect((await store.getNode('node-a'))!.orchestrator).toEqual(membership);
        const listed = new Map((await store.listNodes()).map((node) => [node.id, node]));
        expect(listed.get('node-a')!.orchestrator).toEqual(membership);
        expect(listed.get('node-b')!.orchestrator).toEqual(failed);
        expect('orchestrator' in listed.get('node-c')!).toBe(false);
        await store.setNodeState('node-b', 'draining', 20, 1000);
        expect((await store.getNode('node-a'))!.orchestrator).toEqual(membership);
        await expectInvariant(store);
      });

      it('lists a fleet larger than one read in registration order, each node once', async () => {
        // 250 nodes: more than two of the Redis store's pages (listNodesPage), with gaps left by removals.
        const ids = Array.from({ length: 250 }, (_, index) => `fleet-${String(index).padStart(3, '0')}`);
        for (let start = 0; start < ids.length; start += 50)
          await store.registerNodes(
            ids.slice(start, start + 50).map((id) => registration(id)),
            0,
          );
        for (const id of ['fleet-000', 'fleet-099', 'fleet-100', 'fleet-101', 'fleet-249'])
          await store.removeNode(id, 10);
        await store.registerNode(registration('fleet-000'), 20);
        const listed = (await store.listNodes()).map((node) => node.id);
        const expected = [
          ...ids.filter(
            (id) => !['fleet-000', 'fleet-099', 'fleet-100', 'fleet-101', 'fleet-249'].includes(id),
          ),
          'fleet-000',
        ];
        expect(listed).toEqual(expected);
        await expectInvariant(store);
      });

      it('keeps a node provisioning until its first telemetry, then makes it ready', async () => {
        const { node } = await store.registerNode(registration('node-a'), 0);
        expect(node.state).toBe('provisioning');
        expect(node.gpus[0]!.eligible).toBe(false);
        const early = await store.createSession(
          sessionSpec('s-early'),
          createOptions(10, { waitMode: 'no-wait' }),
        );
        expect(early).toEqual({ kind: 'refused', reason: 'no-capacity' });

        const reported = await store.recordTelemetry('node-a', healthyReport(1), 100);
        expect(reported.state).toBe('ready');
        expect(reported.gpus[0]!.eligible).toBe(true);
        expect(reported.gpus[0]!.telemetryAt).toBe(100);
        const later = await store.createSession(sessionSpec('s-later'), createOptions(200));
        expect(later.kind).toBe('assigned');
        await expectInvariant(store);
      });

      it('rejects telemetry for a GPU index the node does not have, and changes nothing', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }], 0);
        const before = await store.getNode('node-a');
        await expectRejectsWithCode(
          store.recordTelemetry(
            'node-a',
            {
              gpus: [
                { index: 0, temperatureGpu: 70, utilizationGpu: 50 },
                { index: 3, temperatureGpu: 60 },
              ],
            },
            1_000,
          ),
          'VCA_ERR_GPU_NOT_FOUND',
        );
        expect(await store.getNode('node-a')).toEqual(before);
        await expectInvariant(store);
      });

      it('rejects telemetry for a node that is not registered', async () => {
        await expectRejectsWithCode(
          store.recordTelemetry('ghost', healthyReport(1), 0),
          'VCA_ERR_NODE_NOT_FOUND',
        );
        expect(await store.listNodes()).toEqual([]);
      });

      it('keeps a provisioning node provisioning when its first report is rejected', async () => {
        await store.registerNode(registration('node-a'), 0);
        await expectRejectsWithCode(
          store.recordTelemetry('node-a', healthyReport(2), 10),
          'VCA_ERR_GPU_NOT_FOUND',
        );
        const node = await store.getNode('node-a');
        expect(node!.state).toBe('provisioning');
        expect(node!.gpus[0]!.telemetryAt).toBeNull();
        await expectInvariant(store);
      });
    });

    describe('session placement', () => {
      it('assigns a session and commits exactly its cost on the chosen GPU', async () => {
        await readyNode(store, 'node-a');
        const outcome = await store.createSession(sessionSpec('s1', heavyFormat), createOptions(100));
        expect(outcome.kind).toBe('assigned');
        if (outcome.kind !== 'assigned') return;
        expect(outcome.session.state).toBe('assigned');
        expect(outcome.session.placement).toEqual({
          nodeId: 'node-a',
          gpuIndex: 0,
          model: 'L4',
          cost: heavyOnL4,
        });
        expect(outcome.session.leaseExpiresAt).toBe(100 + leaseMs);
        const view = await gpu('node-a');
        expect(view.committed).toEqual(heavyOnL4);
        expect(view.sessions).toBe(1);
        expect((await store.getNode('node-a'))!.sessions).toBe(1);
        expect((await store.sessionsOnNode('node-a')).map((session) => session.id)).toEqual(['s1']);
        await expectInvariant(store);
      });

      it('refuses a second session with the same id', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(100));
        await expectRejectsWithCode(
          store.createSession(sessionSpec('s1'), createOptions(200)),
          'VCA_ERR_SESSION_EXISTS',
        );
        expect((await gpu('node-a')).committed).toEqual(lightOnL4);
        await expectInvariant(store);
      });

      it('queues a session when nothing fits and reports its position', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(100));
        const first = await store.createSession(sessionSpec('q1', heavyFormat), createOptions(200));
        const second = await store.createSession(sessionSpec('q2', heavyFormat), createOptions(300));
        expect(first).toMatchObject({ kind: 'queued', position: 1 });
        expect(second).toMatchObject({ kind: 'queued', position: 2 });
        if (second.kind !== 'queued') return;
        expect(second.session.state).toBe('queued');
        expect(second.session.placement).toBeNull();
        expect(second.session.queueDeadline).toBe(300 + queueWaitMs);
        expect([...(await store.queuePositions())]).toEqual([
          ['q1', 1],
          ['q2', 2],
        ]);
        expect((await gpu('node-a')).committed).toEqual(heavyOnL4);
        await expectInvariant(store);
      });

      it('tells a telemetry report whether sessions wait in the queue', async () => {
        await readyNode(store, 'node-a');
        const idle = await store.reportTelemetry('node-a', healthyReport(1), 100, { sessions: true });
        expect(idle.queueWaiting).toBe(false);
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(100));
        expect((await store.createSession(sessionSpec('q1', heavyFormat), createOptions(200))).kind).toBe(
          'queued',
        );
        // Both answers (brief, and with the node's sessions) carry it, whether the report changed anything.
        for (const sessions of [false, true]) {
          const waiting = await store.reportTelemetry('node-a', healthyReport(1), 300, { sessions });
          expect(waiting.queueWaiting).toBe(true);
        }
        await store.endSession('q1', 'cancelled', 400);
        expect((await store.reportTelemetry('node-a', healthyReport(1), 500)).queueWaiting).toBe(false);
        await expectInvariant(store);
      });

      it('refuses with no-capacity instead of queueing when the caller will not wait', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(100));
        const outcome = await store.createSession(
          sessionSpec('impatient', heavyFormat),
          createOptions(200, { waitMode: 'no-wait' }),
        );
        expect(outcome).toEqual({ kind: 'refused', reason: 'no-capacity' });
        expect(await store.getSession('impatient')).toBeUndefined();
        expect((await store.queuePositions()).size).toBe(0);
        await expectInvariant(store);
      });

      it('refuses with queue-full when the queue is at its limit', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(100));
        const queued = await store.createSession(
          sessionSpec('q1', heavyFormat),
          createOptions(200, { maxQueueLength: 1 }),
        );
        const refused = await store.createSession(
          sessionSpec('q2', heavyFormat),
          createOptions(300, { maxQueueLength: 1 }),
        );
        expect(queued.kind).toBe('queued');
        expect(refused).toEqual({ kind: 'refused', reason: 'queue-full' });
        expect(await store.getSession('q2')).toBeUndefined();
        expect([...(await store.queuePositions()).keys()]).toEqual(['q1']);
        await expectInvariant(store);
      });

      it('never places a session on a model it has no cost for', async () => {
        await readyNode(store, 'node-a');
        const { L40S } = costsFor(lightFormat);
        const outcome = await store.createSession(
          sessionSpec('l40s-only', lightFormat, { costs: { L40S: L40S! } }),
          createOptions(100, { waitMode: 'no-wait' }),
        );
        expect(outcome).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });
    });

    describe('session end', () => {
      it('records a queued session that is released as cancelled: it never held a GPU', async () => {
        const queued = await store.createSession(sessionSpec('q1', heavyFormat), createOptions(100));
        expect(queued.kind).toBe('queued');
        const ended = await store.endSession('q1', 'released', 200);
        expect(ended?.session).toMatchObject({ state: 'ended', endReason: 'cancelled', placement: null });
        expect(ended?.queueWaiting).toBe(false);
        expect((await store.queuePositions()).size).toBe(0);
        await expectInvariant(store);
      });

      it('releases a session exactly once', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1', heavyFormat), createOptions(100));
        const ended = await store.endSession('s1', 'released', 500);
        expect(ended?.session).toMatchObject({
          id: 's1',
          state: 'ended',
          endReason: 'released',
          endedAt: 500,
        });
        expect(ended?.drainedNode).toBeNull();
        expect(await store.endSession('s1', 'released', 600)).toBeUndefined();
        expect(await store.endSession('s1', 'client-closed', 700)).toBeUndefined();
        expect((await gpu('node-a')).committed).toEqual({
          gpu: 0,
          encoder: 0,
          vramMiB: 0,
          encoderSessions: 0,
        });
        expect(await store.getSession('s1')).toMatchObject({ state: 'ended', endReason: 'released' });
        await expectInvariant(store);
      });

      it('answers undefined when ending a session it never had', async () => {
        expect(await store.endSession('nobody', 'released', 0)).toBeUndefined();
        await expectInvariant(store);
      });

      it('frees the capacity of an ended session for the next one', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1', heavyFormat), createOptions(100));
        const blocked = await store.createSession(
          sessionSpec('s2', heavyFormat),
          createOptions(200, { waitMode: 'no-wait' }),
        );
        expect(blocked.kind).toBe('refused');
        await store.endSession('s1', 'client-closed', 300);
        const next = await store.createSession(sessionSpec('s3', heavyFormat), createOptions(400));
        expect(next.kind).toBe('assigned');
        expect((await gpu('node-a')).committed).toEqual(heavyOnL4);
        await expectInvariant(store);
      });

      it('cancels a queued session and moves the sessions behind it up', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(100));
        await store.createSession(sessionSpec('q1', heavyFormat), createOptions(200));
        await store.createSession(sessionSpec('q2', heavyFormat), createOptions(300));
        const cancelled = await store.endSession('q1', 'cancelled', 400);
        expect(cancelled?.session).toMatchObject({ state: 'ended', endReason: 'cancelled', placement: null });
        expect([...(await store.queuePositions())]).toEqual([['q2', 1]]);
        expect((await gpu('node-a')).committed).toEqual(heavyOnL4);
        await expectInvariant(store);
      });
    });

    describe('queue', () => {
      it('places queued sessions once capacity appears, first come first served within a class', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(100));
        for (const [offset, id] of ['q1', 'q2', 'q3'].entries()) {
          await store.createSession(sessionSpec(id, heavyFormat), createOptions(200 + offset));
        }
        expect(await store.placeQueued(300, 'packed', { rest: leaseMs, websocket: leaseMs })).toEqual([]);

        const order: string[] = [];
        let running = 'holder';
        for (let step = 0; step < 3; step++) {
          const now = 1_000 + step * 100;
          await store.endSession(running, 'released', now);
          const placed = await store.placeQueued(now + 1, 'packed', { rest: leaseMs, websocket: leaseMs });
          expect(placed).toHaveLength(1);
          expect(placed[0]).toMatchObject({ state: 'assigned', leaseExpiresAt: now + 1 + leaseMs });
          expect(placed[0]!.placement).toMatchObject({ nodeId: 'node-a', cost: heavyOnL4 });
          running = placed[0]!.id;
          order.push(running);
          await expectInvariant(store);
        }
        expect(order).toEqual(['q1', 'q2', 'q3']);
        expect((await store.queuePositions()).size).toBe(0);
        await expectInvariant(store);
      });

      it('serves premium before standard and reports positions in that order', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(100));
        const arrivals = [
          ['s1', 'standard'],
          ['p1', 'premium'],
          ['s2', 'standard'],
          ['p2', 'premium'],
        ] as const;
        for (const [offset, [id, priority]] of arrivals.entries()) {
          await store.createSession(sessionSpec(id, heavyFormat, { priority }), createOptions(200 + offset));
        }
        expect([...(await store.queuePositions())]).toEqual([
          ['p1', 1],
          ['p2', 2],
          ['s1', 3],
          ['s2', 4],
        ]);

        const order: string[] = [];
        let running = 'holder';
        for (let step = 0; step < arrivals.length; step++) {
          const now = 1_000 + step * 100;
          await store.endSession(running, 'released', now);
          const placed = await store.placeQueued(now, 'packed', { rest: leaseMs, websocket: leaseMs });
          expect(placed).toHaveLength(1);
          running = placed[0]!.id;
          order.push(running);
        }
        expect(order).toEqual(['p1', 'p2', 's1', 's2']);
        await expectInvariant(store);
      });

      it('places as many queued sessions as fit in one pass', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }]);
        await store.createSession(sessionSpec('h1', heavyFormat), createOptions(100));
        await store.createSession(sessionSpec('h2', heavyFormat), createOptions(110));
        for (const [offset, id] of ['q1', 'q2', 'q3'].entries()) {
          await store.createSession(sessionSpec(id, heavyFormat), createOptions(200 + offset));
        }
        await store.endSession('h1', 'released', 300);
        await store.endSession('h2', 'released', 310);
        const placed = await store.placeQueued(400, 'packed', { rest: leaseMs, websocket: leaseMs });
        expect(placed.map((session) => session.id)).toEqual(['q1', 'q2']);
        expect([...(await store.queuePositions())]).toEqual([['q3', 1]]);
        await expectInvariant(store);
      });
    });

    describe('leases', () => {
      it('extends the lease of live sessions on renewal', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(0));
        expect(await store.renewLeases(['s1', 'unknown'], 50_000)).toBe(1);
        expect((await store.getSession('s1'))!.leaseExpiresAt).toBe(50_000);
        expect(await store.expireSessions(leaseMs)).toEqual([]);
        expect((await store.getSession('s1'))!.state).toBe('assigned');
        const expired = await store.expireSessions(50_000);
        expect(expired.map((end) => end.session.id)).toEqual(['s1']);
        await expectInvariant(store);
      });

      it('never shortens a lease on renewal', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(0));
        await store.renewLeases(['s1'], 10);
        expect((await store.getSession('s1'))!.leaseExpiresAt).toBe(leaseMs);
        await expectInvariant(store);
      });

      it('ends sessions whose lease ran out exactly once, with reason lease-expired', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1', heavyFormat), createOptions(0));
        expect(await store.expireSessions(leaseMs - 1)).toEqual([]);
        const expired = await store.expireSessions(leaseMs);
        expect(expired).toHaveLength(1);
        expect(expired[0]!.session).toMatchObject({ id: 's1', state: 'ended', endReason: 'lease-expired' });
        expect(await store.expireSessions(leaseMs + 1)).toEqual([]);
        expect(await store.endSession('s1', 'released', leaseMs + 2)).toBeUndefined();
        expect(await store.renewLeases(['s1'], leaseMs * 10)).toBe(0);
        expect((await gpu('node-a')).committed).toEqual({
          gpu: 0,
          encoder: 0,
          vramMiB: 0,
          encoderSessions: 0,
        });
        await expectInvariant(store);
      });

      it('ends a queued session whose wait ran out, with reason queue-timeout', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(
          sessionSpec('holder', heavyFormat),
          createOptions(0, { leaseExpiresAt: 500_000 }),
        );
        await store.createSession(
          sessionSpec('waiter', heavyFormat),
          createOptions(100, { leaseExpiresAt: 500_000, queueDeadline: 5_000 }),
        );
        expect(await store.expireSessions(4_999)).toEqual([]);
        const expired = await store.expireSessions(5_000);
        expect(expired.map((end) => [end.session.id, end.session.endReason])).toEqual([
          ['waiter', 'queue-timeout'],
        ]);
        expect((await store.queuePositions()).size).toBe(0);
        expect((await store.getSession('holder'))!.state).toBe('assigned');
        await expectInvariant(store);
      });

      it('expires a session placed from the queue at the lease it was given there', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(0));
        await store.createSession(
          sessionSpec('waiter', heavyFormat),
          createOptions(100, { leaseExpiresAt: 100_000, queueDeadline: 60_000 }),
        );
        await store.endSession('holder', 'released', 1_000);
        const placed = await store.placeQueued(1_000, 'packed', { rest: 4_000, websocket: 4_000 });
        expect(placed.map((session) => session.leaseExpiresAt)).toEqual([5_000]);
        const expired = await store.expireSessions(5_000);
        expect(expired.map((end) => [end.session.id, end.session.endReason])).toEqual([
          ['waiter', 'lease-expired'],
        ]);
        await expectInvariant(store);
      });

      it('expires a migrated session at the lease it was given by the migration', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(0, { leaseExpiresAt: 100_000 }));
        await readyNode(store, 'node-b', [{ model: 'L4', count: 1 }], 100);
        await store.setNodeState('node-a', 'draining', 200, 10_000);
        const moved = await store.migrateSession('s1', 300, 'packed', 5_000, 300 + queueWaitMs);
        expect(moved?.session.leaseExpiresAt).toBe(5_000);
        const expired = await store.expireSessions(5_000);
        expect(expired.map((end) => [end.session.id, end.session.endReason])).toEqual([
          ['s1', 'lease-expired'],
        ]);
        await expectInvariant(store);
      });
    });

    describe('telemetry freshness', () => {
      it('makes GPUs with telemetry older than staleAfterMs ineligible but keeps their sessions', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }], 0);
        await store.createSession(sessionSpec('s1'), createOptions(0));
        await store.sweepStale(staleAfterMs);
        expect((await gpu('node-a')).eligible).toBe(true);

        await store.sweepStale(staleAfterMs + 1);
        const node = await store.getNode('node-a');
        expect(node!.gpus[0]).toMatchObject({ stale: true, eligible: false });
        expect(node!.state).toBe('unhealthy');
        expect((await store.getSession('s1'))!.state).toBe('assigned');
        expect(node!.gpus[0]!.committed).toEqual(lightOnL4);
        const refused = await store.createSession(
          sessionSpec('s2'),
          createOptions(staleAfterMs + 2, { waitMode: 'no-wait' }),
        );
        expect(refused).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });

      it('makes a stale GPU eligible again when its reports return', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }], 0);
        await store.createSession(sessionSpec('s1'), createOptions(0));
        await store.sweepStale(staleAfterMs + 1);
        const back = await store.recordTelemetry('node-a', healthyReport(1), staleAfterMs + 100);
        expect(back.state).toBe('ready');
        expect(back.gpus[0]).toMatchObject({ stale: false, eligible: true, telemetryAt: staleAfterMs + 100 });
        const outcome = await store.createSession(sessionSpec('s2'), createOptions(staleAfterMs + 200));
        expect(outcome.kind).toBe('assigned');
        await expectInvariant(store);
      });

      it('goes stale on its own at placement time, without a sweep', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }], 0);
        const outcome = await store.createSession(
          sessionSpec('late'),
          createOptions(staleAfterMs + 1, { waitMode: 'no-wait' }),
        );
        expect(outcome).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });

      it('keeps a fresh GPU eligible while another GPU of the node goes stale', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }], 0);
        await store.recordTelemetry('node-a', { gpus: [{ index: 1, temperatureGpu: 45 }] }, 4_000);
        await store.sweepStale(staleAfterMs + 1);
        const node = await store.getNode('node-a');
        expect(node!.state).toBe('ready');
        expect(node!.gpus.map((view) => view.eligible)).toEqual([false, true]);
        const outcome = await store.createSession(sessionSpec('s1'), createOptions(staleAfterMs + 2));
        expect(outcome.kind === 'assigned' && outcome.session.placement!.gpuIndex).toBe(1);
        await expectInvariant(store);
      });
    });

    describe('hard filters', () => {
      it('never places on a GPU within the temperature margin of its throttle point', async () => {
        // L4 throttles at 87 C; with a 5 C margin, 82 C is too hot and 81 C is fine.
        await store.registerNode(registration('node-a', [{ model: 'L4', count: 2 }]), 0);
        await store.recordTelemetry(
          'node-a',
          {
            gpus: [
              { index: 0, temperatureGpu: 82 },
              { index: 1, temperatureGpu: 81 },
            ],
          },
          0,
        );
        const views = (await store.getNode('node-a'))!.gpus;
        expect(views.map((view) => view.eligible)).toEqual([false, true]);
        const first = await store.createSession(sessionSpec('s1', heavyFormat), createOptions(10));
        expect(first.kind === 'assigned' && first.session.placement!.gpuIndex).toBe(1);
        const second = await store.createSession(
          sessionSpec('s2', heavyFormat),
          createOptions(20, { waitMode: 'no-wait' }),
        );
        expect(second).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });

      it('never places on a GPU that reports active throttling', async () => {
        await store.registerNode(registration('node-a'), 0);
        await store.recordTelemetry('node-a', healthyReport(1, { throttleActive: true }), 0);
        const outcome = await store.createSession(
          sessionSpec('s1'),
          createOptions(10, { waitMode: 'no-wait' }),
        );
        expect(outcome).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await store.recordTelemetry('node-a', healthyReport(1), 20);
        expect((await store.createSession(sessionSpec('s2'), createOptions(30))).kind).toBe('assigned');
        await expectInvariant(store);
      });

      it('never places on a GPU model without NVENC, even when the request carries a cost for it', async () => {
        await readyNode(store, 'node-h100', [{ model: 'H100', count: 2 }]);
        expect((await store.getNode('node-h100'))!.gpus.every((view) => !view.eligible)).toBe(true);
        const plain = await store.createSession(
          sessionSpec('s1'),
          createOptions(10, { waitMode: 'no-wait' }),
        );
        expect(plain).toEqual({ kind: 'refused', reason: 'no-capacity' });
        const forged = await store.createSession(
          sessionSpec('s2', lightFormat, { costs: { H100: lightOnL4 } }),
          createOptions(20, { waitMode: 'no-wait' }),
        );
        expect(forged).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });

      it('honours the per-system limit of 8 encoder sessions across both GPUs of a GeForce node', async () => {
        await readyNode(store, 'node-geforce', [{ model: 'RTX 4080 SUPER', count: 2 }]);
        expect((await store.getNode('node-geforce'))!.encoderSessionLimit).toBe(8);
        for (let i = 0; i < 8; i++) {
          const outcome = await store.createSession(
            sessionSpec(`s${i}`),
            createOptions(10 + i, { strategy: 'spread' }),
          );
          expect(outcome.kind).toBe('assigned');
        }
        const node = await store.getNode('node-geforce');
        expect(node!.gpus.map((view) => view.sessions)).toEqual([4, 4]);
        expect(node!.gpus.every((view) => !view.eligible)).toBe(true);
        const ninth = await store.createSession(
          sessionSpec('s8'),
          createOptions(100, { waitMode: 'no-wait' }),
        );
        expect(ninth).toEqual({ kind: 'refused', reason: 'no-capacity' });

        await store.endSession('s3', 'released', 200);
        expect((await store.createSession(sessionSpec('s9'), createOptions(300))).kind).toBe('assigned');
        expect((await store.getNode('node-geforce'))!.sessions).toBe(8);
        await expectInvariant(store);
      });

      it('counts encoder sessions the telemetry measured against the per-system limit', async () => {
        // Effective load is max(committed, measured): eight streams the VCA did not start fill the host.
        await store.registerNode(registration('node-geforce', [{ model: 'RTX 4080 SUPER', count: 2 }]), 0);
        const measured = (sessions: number) => ({
          gpus: [0, 1].map((index) => ({ index, temperatureGpu: 50, encoderSessions: sessions })),
        });
        await store.recordTelemetry('node-geforce', measured(4), 0);
        const full = await store.createSession(sessionSpec('s1'), createOptions(10, { waitMode: 'no-wait' }));
        expect(full).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await store.recordTelemetry('node-geforce', measured(0), 20);
        expect((await store.createSession(sessionSpec('s2'), createOptions(30))).kind).toBe('assigned');
        await expectInvariant(store);
      });

      it('places a session only in the region it asks for', async () => {
        await readyNode(store, 'node-eu', [{ model: 'L4', count: 1 }], 0, { region: 'eu-west' });
        await readyNode(store, 'node-us', [{ model: 'L4', count: 1 }], 0, { region: 'us-east' });
        const us = await store.createSession(
          sessionSpec('s-us', lightFormat, { region: 'us-east' }),
          createOptions(10),
        );
        expect(us.kind === 'assigned' && us.session.placement!.nodeId).toBe('node-us');
        const asia = await store.createSession(
          sessionSpec('s-ap', lightFormat, { region: 'ap-south' }),
          createOptions(20, { waitMode: 'no-wait' }),
        );
        expect(asia).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });

      it('places a session only on a node carrying every label it asks for', async () => {
        await readyNode(store, 'node-plain', [{ model: 'L40S', count: 1 }], 0, { tier: 'standard' });
        await readyNode(store, 'node-ultra', [{ model: 'L4', count: 1 }], 0, {
          tier: 'ultra',
          storage: 'nvme',
        });
        const ultra = await store.createSession(
          sessionSpec('s1', lightFormat, { labels: { tier: 'ultra', storage: 'nvme' } }),
          createOptions(10),
        );
        expect(ultra.kind === 'assigned' && ultra.session.placement!.nodeId).toBe('node-ultra');
        const missing = await store.createSession(
          sessionSpec('s2', lightFormat, { labels: { tier: 'ultra', storage: 'hdd' } }),
          createOptions(20, { waitMode: 'no-wait' }),
        );
        expect(missing).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });

      it('finds the one labelled GPU behind many busier ones of the same model that lack the label', async () => {
        // Packed walks the pool from the fullest GPU that could take the session: the six half-busy
        // GPUs come first and fail the label check; the empty labelled one is the seventh candidate.
        for (let i = 0; i < 6; i++) {
          await readyNode(store, `node-a${i}`, [{ model: 'L4', count: 1 }], 0, { rack: 'a' });
          await store.recordTelemetry(
            `node-a${i}`,
            healthyReport(1, { utilizationGpu: 50, utilizationEncoder: 50 }),
            0,
          );
        }
        await readyNode(store, 'node-b', [{ model: 'L4', count: 1 }], 0, { rack: 'b' });
        for (const strategy of ['packed', 'spread'] as const) {
          const outcome = await store.createSession(
            sessionSpec(`s-${strategy}`, lightFormat, { labels: { rack: 'b' } }),
            createOptions(10, { strategy, waitMode: 'no-wait' }),
          );
          expect(outcome.kind === 'assigned' && outcome.session.placement!.nodeId, strategy).toBe('node-b');
        }
        await expectInvariant(store);
      });
    });

    describe('draining', () => {
      it('takes no new sessions on a draining node', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }]);
        await store.createSession(sessionSpec('s1'), createOptions(10));
        const draining = await store.setNodeState('node-a', 'draining', 20, 90_000);
        expect(draining).toMatchObject({ state: 'draining', drainDeadline: 90_000, sessions: 1 });
        expect(draining.gpus.every((view) => !view.eligible)).toBe(true);
        expect((await store.drainingNodes()).map((node) => node.id)).toEqual(['node-a']);
        const refused = await store.createSession(
          sessionSpec('s2'),
          createOptions(30, { waitMode: 'no-wait' }),
        );
        expect(refused).toEqual({ kind: 'refused', reason: 'no-capacity' });
        expect((await store.getSession('s1'))!.state).toBe('assigned');
        await expectInvariant(store);
      });

      it('drains the node when its last session ends', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        await store.createSession(sessionSpec('s2'), createOptions(20));
        await store.setNodeState('node-a', 'draining', 30, 90_000);
        const first = await store.endSession('s1', 'released', 40);
        expect(first?.drainedNode).toBeNull();
        const last = await store.endSession('s2', 'released', 50);
        expect(last?.drainedNode).toMatchObject({ id: 'node-a', state: 'drained', sessions: 0 });
        expect((await store.getNode('node-a'))!.state).toBe('drained');
        expect(await store.drainingNodes()).toEqual([]);
        await expectInvariant(store);
      });

      it('drains the node when its last session expires', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(0));
        await store.setNodeState('node-a', 'draining', 10, 90_000);
        const [expired] = await store.expireSessions(leaseMs);
        expect(expired?.drainedNode).toMatchObject({ id: 'node-a', state: 'drained' });
        await expectInvariant(store);
      });

      it('drains an empty node at once', async () => {
        await readyNode(store, 'node-a');
        const drained = await store.setNodeState('node-a', 'draining', 10, 90_000);
        expect(drained.state).toBe('drained');
        expect(await store.drainingNodes()).toEqual([]);
        await expectInvariant(store);
      });

      it('undrains a draining node before it empties', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 2 }]);
        await store.createSession(sessionSpec('s1'), createOptions(10));
        await store.setNodeState('node-a', 'draining', 20, 90_000);
        const undrained = await store.setNodeState('node-a', 'ready', 30);
        expect(undrained).toMatchObject({ state: 'ready', drainDeadline: null });
        expect(undrained.gpus.every((view) => view.eligible)).toBe(true);
        expect((await store.createSession(sessionSpec('s2'), createOptions(40))).kind).toBe('assigned');
        expect((await store.endSession('s1', 'released', 50))?.drainedNode).toBeNull();
        expect((await store.endSession('s2', 'released', 60))?.drainedNode).toBeNull();
        expect((await store.getNode('node-a'))!.state).toBe('ready');
        await expectInvariant(store);
      });

      it('cannot undrain a node that has already drained', async () => {
        await readyNode(store, 'node-a');
        await store.setNodeState('node-a', 'draining', 10, 90_000);
        await expectRejectsWithCode(store.setNodeState('node-a', 'ready', 20), 'VCA_ERR_NODE_STATE');
        expect((await store.getNode('node-a'))!.state).toBe('drained');
        await expectInvariant(store);
      });
    });

    describe('migration', () => {
      it('moves a session off a draining node to another node in one step', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1', heavyFormat), createOptions(10));
        await readyNode(store, 'node-b', [{ model: 'L4', count: 1 }], 20);
        await store.setNodeState('node-a', 'draining', 30, 1_000);

        const moved = await store.migrateSession('s1', 1_000, 'packed', 1_000 + leaseMs, 1_000 + queueWaitMs);
        expect(moved?.from).toEqual({ nodeId: 'node-a', gpuIndex: 0, model: 'L4', cost: heavyOnL4 });
        expect(moved?.session).toMatchObject({
          state: 'assigned',
          migrations: 1,
          leaseExpiresAt: 1_000 + leaseMs,
        });
        expect(moved?.session.placement).toEqual({
          nodeId: 'node-b',
          gpuIndex: 0,
          model: 'L4',
          cost: heavyOnL4,
        });
        expect(moved?.drainedNode).toMatchObject({ id: 'node-a', state: 'drained' });
        expect((await gpu('node-a')).committed).toEqual({
          gpu: 0,
          encoder: 0,
          vramMiB: 0,
          encoderSessions: 0,
        });
        expect((await gpu('node-b')).committed).toEqual(heavyOnL4);
        expect((await store.sessionsOnNode('node-b')).map((session) => session.id)).toEqual(['s1']);
        await expectInvariant(store);
      });

      it('puts the session at the front of the queue when nothing else fits', async () => {
        await readyNode(store, 'node-a');
        await readyNode(store, 'node-b');
        await store.createSession(
          sessionSpec('s-a', heavyFormat, { priority: 'standard' }),
          createOptions(10),
        );
        await store.createSession(sessionSpec('s-b', heavyFormat), createOptions(20));
        await store.createSession(sessionSpec('waiting', heavyFormat), createOptions(30));
        const onA = (await store.sessionsOnNode('node-a'))[0]!.id;
        const onB = onA === 's-a' ? 's-b' : 's-a';
        await store.setNodeState('node-a', 'draining', 40, 1_000);

        const moved = await store.migrateSession(onA, 1_000, 'packed', 1_000 + leaseMs, 1_000 + queueWaitMs);
        expect(moved?.session).toMatchObject({ id: onA, state: 'queued', placement: null, migrations: 1 });
        expect(moved?.session.queueDeadline).toBe(1_000 + queueWaitMs);
        expect(moved?.drainedNode).toMatchObject({ id: 'node-a', state: 'drained' });
        expect([...(await store.queuePositions())]).toEqual([
          [onA, 1],
          ['waiting', 2],
        ]);
        expect((await gpu('node-a')).committed).toEqual({
          gpu: 0,
          encoder: 0,
          vramMiB: 0,
          encoderSessions: 0,
        });
        await expectInvariant(store);

        await store.endSession(onB, 'released', 2_000);
        const placed = await store.placeQueued(2_000, 'packed', { rest: leaseMs, websocket: leaseMs });
        expect(placed.map((session) => [session.id, session.placement!.nodeId])).toEqual([[onA, 'node-b']]);
        await expectInvariant(store);
      });

      it('answers undefined for a session that is not assigned', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('holder', heavyFormat), createOptions(10));
        await store.createSession(sessionSpec('waiting', heavyFormat), createOptions(20));
        expect(
          await store.migrateSession('waiting', 30, 'packed', 30 + leaseMs, 30 + queueWaitMs),
        ).toBeUndefined();
        expect(
          await store.migrateSession('nobody', 30, 'packed', 30 + leaseMs, 30 + queueWaitMs),
        ).toBeUndefined();
        await store.endSession('holder', 'released', 40);
        expect(
          await store.migrateSession('holder', 50, 'packed', 50 + leaseMs, 50 + queueWaitMs),
        ).toBeUndefined();
        await expectInvariant(store);
      });
    });

    describe('node removal', () => {
      it('refuses to remove a node while sessions live on it', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        await expectRejectsWithCode(store.removeNode('node-a', 20), 'VCA_ERR_NODE_STATE');
        expect((await store.getNode('node-a'))!.state).toBe('ready');
        expect((await store.getSession('s1'))!.state).toBe('assigned');
        await expectInvariant(store);
      });

      it('removes a node once it is empty', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        await store.setNodeState('node-a', 'draining', 20, 1_000);
        await store.endSession('s1', 'released', 30);
        const removed = await store.removeNode('node-a', 40);
        expect(removed).toMatchObject({ id: 'node-a', state: 'removed', stateChangedAt: 40 });
        expect(await store.getNode('node-a')).toBeUndefined();
        expect(await store.listNodes()).toEqual([]);
        expect(await store.removeNode('node-a', 50)).toBeUndefined();
        const outcome = await store.createSession(
          sessionSpec('s2'),
          createOptions(60, { waitMode: 'no-wait' }),
        );
        expect(outcome).toEqual({ kind: 'refused', reason: 'no-capacity' });
        await expectInvariant(store);
      });

      it('accepts a new definition under the id of a removed node', async () => {
        await readyNode(store, 'node-a');
        await store.removeNode('node-a', 10);
        const again = await store.registerNode(registration('node-a', [{ model: 'L40S', count: 2 }]), 20);
        expect(again.created).toBe(true);
        expect(again.node.gpus.map((view) => view.model)).toEqual(['L40S', 'L40S']);
        await expectInvariant(store);
      });
    });

    describe('health', () => {
      it('answers a ping while it is reachable', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });

    describe('webhook idempotency', () => {
      it('remembers the first delivery and answers replays with its result until the memory expires', async () => {
        const first = await store.rememberWebhook('event-1', { accepted: 2 }, 10_000, 0);
        expect(first).toEqual({ first: true, result: { accepted: 2 } });
        const replay = await store.rememberWebhook('event-1', { accepted: 99 }, 10_000, 9_999);
        expect(replay).toEqual({ first: false, result: { accepted: 2 } });
        const other = await store.rememberWebhook('event-2', { accepted: 1 }, 10_000, 5_000);
        expect(other.first).toBe(true);

        const afterExpiry = await store.rememberWebhook('event-1', { accepted: 3 }, 10_000, 10_001);
        expect(afterExpiry).toEqual({ first: true, result: { accepted: 3 } });
        expect((await store.rememberWebhook('event-2', null, 10_000, 10_002)).first).toBe(false);
        await expectInvariant(store);
      });

      it('answers replays with the settled result once the first delivery finished', async () => {
        const claim = await store.rememberWebhook('event-1', { status: 'processing' }, 10_000, 0);
        expect(claim.first).toBe(true);
        await store.settleWebhook('event-1', { accepted: 2 }, 10_000, 100);
        const replay = await store.rememberWebhook('event-1', { status: 'processing' }, 10_000, 200);
        expect(replay).toEqual({ first: false, result: { accepted: 2 } });
        await expectInvariant(store);
      });
    });

    describe('callback outbox', () => {
      const lease = 5_000;

      it('writes one node-drained entry, due at once, when the last session of a draining node ends', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        await store.createSession(sessionSpec('s2'), createOptions(20));
        await store.setNodeState('node-a', 'draining', 30, 90_000);
        await store.endSession('s1', 'released', 40);
        expect(await store.outboxLength()).toBe(0);
        expect(await store.claimOutbox(45, lease, 10)).toEqual([]);

        await store.endSession('s2', 'released', 50);
        expect(await store.outboxLength()).toBe(1);
        // Removing the node (what finishDrain does next) keeps its callback.
        await store.removeNode('node-a', 55);
        expect(await store.claimOutbox(60, lease, 10)).toEqual([
          {
            id: 'node-drained:node-a:0',
            kind: 'node-drained',
            node: { id: 'node-a', host: 'node-a.render.test', group: null },
            createdAt: 50,
            dueAt: 60 + lease,
            attempts: 1,
            lastError: null,
          },
        ]);
        expect(await store.outboxLength()).toBe(1);
        await expectInvariant(store);
      });

      it('writes one entry when an empty node is drained, and no second one for a repeated transition', async () => {
        await store.registerNode({ ...registration('node-a'), group: 'asg-1' }, 0);
        await store.recordTelemetry('node-a', healthyReport(1), 0);
        expect((await store.setNodeState('node-a', 'draining', 10, 90_000)).state).toBe('drained');
        expect((await store.setNodeState('node-a', 'drained', 20)).state).toBe('drained');
        expect(await store.outboxLength()).toBe(1);
        const [entry, ...others] = await store.claimOutbox(30, lease, 10);
        expect(others).toEqual([]);
        expect(entry).toMatchObject({
          id: 'node-drained:node-a:0',
          node: { id: 'node-a', host: 'node-a.render.test', group: 'asg-1' },
          createdAt: 10,
          attempts: 1,
        });
      });

      it('writes the entry when the last session of a draining node expires or migrates away', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(0));
        await store.setNodeState('node-a', 'draining', 10, 90_000);
        await store.expireSessions(leaseMs);
        expect((await store.claimOutbox(leaseMs, lease, 10)).map((entry) => entry.id)).toEqual([
          'node-drained:node-a:0',
        ]);

        const t = leaseMs + 10;
        await readyNode(store, 'node-b', [{ model: 'L4', count: 1 }], t);
        expect((await store.createSession(sessionSpec('s2', heavyFormat), createOptions(t))).kind).toBe(
          'assigned',
        );
        await readyNode(store, 'node-c', [{ model: 'L4', count: 1 }], t + 1);
        await store.setNodeState('node-b', 'draining', t + 2, t + 3);
        const moved = await store.migrateSession('s2', t + 3, 'packed', t + leaseMs, t + queueWaitMs);
        expect(moved?.drainedNode?.id).toBe('node-b');
        expect((await store.claimOutbox(t + 4, lease, 10)).map((entry) => entry.id)).toEqual([
          `node-drained:node-b:${t}`,
        ]);
        expect(await store.outboxLength()).toBe(2);
        await expectInvariant(store);
      });

      it('hides a claimed entry from every other claim until its lease runs out', async () => {
        await readyNode(store, 'node-a');
        await store.setNodeState('node-a', 'draining', 10, 90_000);
        expect(await store.claimOutbox(20, lease, 10)).toHaveLength(1);
        expect(await store.claimOutbox(21, lease, 10)).toEqual([]);
        expect(await store.claimOutbox(20 + lease - 1, lease, 10)).toEqual([]);
        const [again] = await store.claimOutbox(20 + lease, lease, 10);
        expect(again).toMatchObject({ attempts: 2, dueAt: 20 + 2 * lease });
      });

      it('claims at most `limit` entries, earliest due first', async () => {
        await readyNode(store, 'node-a');
        await readyNode(store, 'node-b');
        await store.setNodeState('node-b', 'draining', 10, 90_000);
        await store.setNodeState('node-a', 'draining', 20, 90_000);
        expect((await store.claimOutbox(30, lease, 1)).map((entry) => entry.node.id)).toEqual(['node-b']);
        expect((await store.claimOutbox(31, lease, 1)).map((entry) => entry.node.id)).toEqual(['node-a']);
        expect(await store.claimOutbox(32, lease, 1)).toEqual([]);
      });

      it('removes a completed entry for good', async () => {
        await readyNode(store, 'node-a');
        await store.setNodeState('node-a', 'draining', 10, 90_000);
        const [entry] = await store.claimOutbox(20, lease, 10);
        expect(await store.completeOutbox(entry!.id)).toBe(true);
        expect(await store.completeOutbox(entry!.id)).toBe(false);
        expect(await store.outboxLength()).toBe(0);
        expect(await store.claimOutbox(20 + 10 * lease, lease, 10)).toEqual([]);
        expect(await store.retryOutbox(entry!.id, entry!.attempts, 30, 'late')).toBe(false);
        expect(await store.outboxLength()).toBe(0);
      });

      it('reschedules a retried entry, unless it was claimed again since', async () => {
        await readyNode(store, 'node-a');
        await store.setNodeState('node-a', 'draining', 10, 90_000);
        const [first] = await store.claimOutbox(20, lease, 10);
        expect(await store.retryOutbox(first!.id, first!.attempts, 1_000, 'HTTP 503')).toBe(true);
        expect(await store.claimOutbox(999, lease, 10)).toEqual([]);
        const [second] = await store.claimOutbox(1_000, lease, 10);
        expect(second).toMatchObject({ attempts: 2, dueAt: 1_000 + lease, lastError: 'HTTP 503' });
        // The first claim's lease ran out and the entry was claimed again: its late retry changes nothing.
        expect(await store.retryOutbox(first!.id, first!.attempts, 1_001, 'timeout')).toBe(false);
        expect(await store.claimOutbox(1_001, lease, 10)).toEqual([]);
        expect(await store.retryOutbox('node-drained:ghost:0', 1, 1_001, 'unknown')).toBe(false);
        expect(await store.outboxLength()).toBe(1);
      });
    });

    describe('session owners and the per-owner limit', () => {
      const owned = (id: string, owner: string, format = lightFormat) => sessionSpec(id, format, { owner });
      const limited = (now: number, maxOwnerSessions: number, extra = {}) =>
        createOptions(now, { maxOwnerSessions, ...extra });

      it('keeps the owner on every record it answers, and none for a session without one', async () => {
        await readyNode(store, 'node-a');
        const created = await store.createSession(owned('mine', 'gamer-a'), limited(10, 1));
        expect(created).toMatchObject({ kind: 'assigned', session: { id: 'mine', owner: 'gamer-a' } });
        const anonymous = await store.createSession(sessionSpec('front-end'), limited(11, 1));
        expect(anonymous).toMatchObject({ kind: 'assigned', session: { owner: null } });
        expect((await store.getSession('mine'))?.owner).toBe('gamer-a');
        expect((await store.getSession('front-end'))?.owner).toBeNull();
        const onNode = await store.sessionsOnNode('node-a');
        expect(Object.fromEntries(onNode.map((session) => [session.id, session.owner]))).toEqual({
          mine: 'gamer-a',
          'front-end': null,
        });
        const ended = await store.endSession('mine', 'released', 20);
        expect(ended?.session.owner).toBe('gamer-a');
        expect((await store.getSession('mine'))?.owner).toBe('gamer-a');
        await expectInvariant(store);
      });

      it('refuses an owner at the limit, counting queued and assigned sessions, and changes nothing', async () => {
        await readyNode(store, 'node-a');
        expect((await store.createSession(owned('a1', 'gamer-a', heavyFormat), limited(10, 2))).kind).toBe(
          'assigned',
        );
        expect((await store.createSession(owned('a2', 'gamer-a', heavyFormat), limited(11, 2))).kind).toBe(
          'queued',
        );
        const before = { node: await store.getNode('node-a'), queue: await store.queuePositions() };
        expect(await store.createSession(owned('a3', 'gamer-a'), limited(12, 2))).toEqual({
          kind: 'refused',
          reason: 'owner-limit',
        });
        // The limit is checked first: also when the answer would otherwise be no-capacity.
        expect(
          await store.createSession(owned('a4', 'gamer-a'), limited(13, 2, { waitMode: 'no-wait' })),
        ).toEqual({ kind: 'refused', reason: 'owner-limit' });
        expect(await store.getSession('a3')).toBeUndefined();
        expect(await store.getSession('a4')).toBeUndefined();
        expect({ node: await store.getNode('node-a'), queue: await store.queuePositions() }).toEqual(before);
        // Other owners, and sessions without one, are not held back by gamer-a's limit.
        expect((await store.createSession(owned('b1', 'gamer-b', heavyFormat), limited(14, 2))).kind).toBe(
          'queued',
        );
        expect((await store.createSession(sessionSpec('anon', heavyFormat), limited(15, 2))).kind).toBe(
          'queued',
        );
        await expectInvariant(store);
      });

      it('gives a place back on every way out: end, leaving the queue, lease expiry, queue timeout', async () => {
        await readyNode(store, 'node-a');
        const create = (id: string, now: number, format = lightFormat) =>
          store.createSession(owned(id, 'gamer-a', format), limited(now, 1));
        expect((await create('s1', 10)).kind).toBe('assigned');
        expect((await create('refused', 11)).kind).toBe('refused');
        await store.endSession('s1', 'released', 20);
        expect((await create('s2', 30)).kind).toBe('assigned');
        // s2's lease runs out (leaseMs after 30).
        expect((await store.expireSessions(30 + leaseMs)).map((end) => end.session.id)).toEqual(['s2']);
        // The GPU is taken by someone else: gamer-a's next session waits in the queue.
        await store.recordTelemetry('node-a', healthyReport(1), 40_000);
        expect(
          (await store.createSession(sessionSpec('other', heavyFormat), createOptions(40_000))).kind,
        ).toBe('assigned');
        const now = 40_001;
        expect((await create('s3', now, heavyFormat)).kind).toBe('queued');
        expect((await create('refused-2', now + 1)).kind).toBe('refused');
        await store.endSession('s3', 'released', now + 2);
        expect((await store.getSession('s3'))?.endReason).toBe('cancelled');
        expect((await create('s4', now + 3, heavyFormat)).kind).toBe('queued');
        // Leases outlive s4's queue deadline: it ends by queue timeout, and nothing else ends.
        await store.renewLeases(['s4', 'other'], now + 3 + 10 * queueWaitMs);
        const expired = await store.expireSessions(now + 3 + queueWaitMs);
        expect(expired.map((end) => [end.session.id, end.session.endReason])).toEqual([
          ['s4', 'queue-timeout'],
        ]);
        expect((await create('s5', now + 4 + queueWaitMs, heavyFormat)).kind).toBe('queued');
        await expectInvariant(store);
      });

      it('keeps counting a session that migrates, and one placed from the queue', async () => {
        await readyNode(store, 'node-a');
        await readyNode(store, 'node-b', undefined, 0, { spare: 'yes' });
        expect((await store.createSession(owned('s1', 'gamer-a', heavyFormat), limited(10, 2))).kind).toBe(
          'assigned',
        );
        expect((await store.createSession(owned('s2', 'gamer-a', heavyFormat), limited(11, 2))).kind).toBe(
          'assigned',
        );
        const onA = (await store.sessionsOnNode('node-a'))[0]!.id;
        await store.setNodeState('node-a', 'draining', 20, 1_000);
        const moved = await store.migrateSession(onA, 30, 'packed', 30 + leaseMs, 30 + queueWaitMs);
        expect(moved?.session).toMatchObject({ id: onA, state: 'queued', owner: 'gamer-a' });
        expect((await store.createSession(owned('s3', 'gamer-a'), limited(40, 2))).kind).toBe('refused');
        await readyNode(store, 'node-c', undefined, 50);
        const placed = await store.placeQueued(60, 'packed', { rest: leaseMs, websocket: leaseMs });
        expect(placed.map((session) => [session.id, session.owner])).toEqual([[onA, 'gamer-a']]);
        expect((await store.createSession(owned('s3', 'gamer-a'), limited(70, 2))).kind).toBe('refused');
        await expectInvariant(store);
      });

      it('admits exactly the limit among concurrent requests of one owner', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 4 }]);
        const outcomes = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            store.createSession(owned(`c${i}`, 'gamer-a'), limited(10, 3)),
          ),
        );
        const kinds = outcomes.map((outcome) => (outcome.kind === 'refused' ? outcome.reason : outcome.kind));
        expect(kinds.filter((kind) => kind === 'assigned')).toHaveLength(3);
        expect(kinds.filter((kind) => kind === 'owner-limit')).toHaveLength(9);
        await expectInvariant(store);
      });
    });

    describe('several nodes in one step (webhook effects, all or nothing)', () => {
      const victimStates = ['provisioning', 'unhealthy', 'ready'] as const;

      async function refusal(promise: Promise<unknown>): Promise<VcaError> {
        const error = await promise.then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(VcaError);
        return error as VcaError;
      }

      it('drains every named node in one step: an empty one at once, a busy one until it empties', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        await readyNode(store, 'node-b', undefined, 10);
        const nodes = await store.drainNodes(['node-a', 'node-b'], 20, 90_000);
        expect(nodes.map((node) => [node.id, node.state])).toEqual([
          ['node-a', 'draining'],
          ['node-b', 'drained'],
        ]);
        expect(nodes[0]).toMatchObject({ drainDeadline: 90_000, sessions: 1 });
        expect((await store.drainingNodes()).map((node) => node.id)).toEqual(['node-a']);
        expect(await store.outboxLength()).toBe(1);
        // A repeated id counts once; a node already draining keeps draining, with the new deadline.
        const again = await store.drainNodes(['node-a', 'node-a'], 30, 120_000);
        expect(again.map((node) => [node.id, node.state, node.drainDeadline])).toEqual([
          ['node-a', 'draining', 120_000],
        ]);
        await expectInvariant(store);
      });

      it('refuses the whole step, changing nothing, when one named node is not registered', async () => {
        await readyNode(store, 'node-a');
        await readyNode(store, 'node-b');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        const before = await store.listNodes();
        const error = await refusal(store.drainNodes(['node-a', 'node-b', 'ghost-node'], 20, 90_000));
        expect(error.code).toBe('VCA_ERR_NODE_NOT_FOUND');
        expect(error.extra).toMatchObject({ nodeId: 'ghost-node' });
        expect(await store.listNodes()).toEqual(before);
        expect(await store.drainingNodes()).toEqual([]);
        expect(await store.outboxLength()).toBe(0);
        await expectInvariant(store);
      });

      it('refuses the whole step when one node can no longer drain', async () => {
        await readyNode(store, 'node-a');
        await readyNode(store, 'node-b');
        await store.setNodeState('node-b', 'draining', 10, 90_000);
        const before = await store.listNodes();
        const error = await refusal(store.drainNodes(['node-a', 'node-b'], 20, 90_000));
        expect(error.code).toBe('VCA_ERR_NODE_STATE');
        expect(error.extra).toMatchObject({ nodeId: 'node-b' });
        expect(await store.listNodes()).toEqual(before);
        expect(await store.outboxLength()).toBe(1);
        await expectInvariant(store);
      });

      it('with onlyFrom, refuses the whole step when a picked node left those states since', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        await readyNode(store, 'node-b');
        await store.registerNode(registration('node-c'), 15);
        // Picked while ready; another caller drains it before this step runs.
        await store.setNodeState('node-a', 'draining', 20, 90_000);
        const before = await store.listNodes();
        const error = await refusal(
          store.drainNodes(['node-b', 'node-a'], 30, 90_000, { onlyFrom: victimStates }),
        );
        expect(error.code).toBe('VCA_ERR_NODE_STATE');
        expect(error.extra).toMatchObject({ nodeId: 'node-a' });
        expect(await store.listNodes()).toEqual(before);
        const drained = await store.drainNodes(['node-c', 'node-b'], 40, 90_000, { onlyFrom: victimStates });
        expect(drained.map((node) => [node.id, node.state])).toEqual([
          ['node-c', 'drained'],
          ['node-b', 'drained'],
        ]);
        await expectInvariant(store);
      });

      it('registers a batch in one step, all or none, naming the node that refused it', async () => {
        const first = await store.registerNodes([registration('node-a'), registration('node-b')], 0);
        expect(first.map(({ node, created }) => [node.id, created])).toEqual([
          ['node-a', true],
          ['node-b', true],
        ]);
        const before = await store.listNodes();

        const conflict = await refusal(
          store.registerNodes(
            [registration('node-c'), { ...registration('node-a'), host: 'elsewhere.test' }],
            10,
          ),
        );
        expect(conflict.code).toBe('VCA_ERR_NODE_CONFLICT');
        expect(conflict.extra).toMatchObject({ nodeId: 'node-a' });

        const unknownModel = await refusal(
          store.registerNodes(
            [registration('node-d'), registration('node-x', [{ model: 'Voodoo 2', count: 1 }])],
            20,
          ),
        );
        expect(unknownModel.code).toBe('VCA_ERR_UNKNOWN_GPU_MODEL');
        expect(unknownModel.extra).toMatchObject({ nodeId: 'node-x' });

        const twiceOtherwise = await refusal(
          store.registerNodes([registration('node-e'), { ...registration('node-e'), port: 7001 }], 30),
        );
        expect(twiceOtherwise.code).toBe('VCA_ERR_NODE_CONFLICT');
        expect(await store.listNodes()).toEqual(before);

        const replayed = await store.registerNodes(
          [registration('node-a'), registration('node-f'), registration('node-f')],
          40,
        );
        expect(replayed.map(({ node, created }) => [node.id, created, node.registeredAt])).toEqual([
          ['node-a', false, 0],
          ['node-f', true, 40],
          ['node-f', false, 40],
        ]);
        expect((await store.listNodes()).map((node) => node.id)).toEqual(['node-a', 'node-b', 'node-f']);
        await expectInvariant(store);
      });

      it('forgets a webhook key: the next claim under it is the first again', async () => {
        await store.rememberWebhook('event-1', { status: 'processing' }, 10_000, 0);
        await store.forgetWebhook('event-1');
        expect(await store.rememberWebhook('event-1', { status: 'processing' }, 10_000, 10)).toEqual({
          first: true,
          result: { status: 'processing' },
        });
        await store.settleWebhook('event-1', { accepted: 1 }, 10_000, 20);
        await store.forgetWebhook('event-1');
        expect((await store.rememberWebhook('event-1', { accepted: 2 }, 10_000, 30)).first).toBe(true);
        await store.forgetWebhook('never-seen');
      });
    });

    describe('placement: latency policies', () => {
      // One L4 per region; a heavy session fills one on its own. The gamer reports eu 20, us 60, ap 150.
      const policies = [
        { maxLatencyMs: 50, forSeconds: 5 },
        { maxLatencyMs: 100, forSeconds: 20 },
      ];
      const latencies = { eu: 20, us: 60, ap: 150 };
      const regions = ['eu', 'us', 'ap'];
      let latencyStore: StateStore;

      async function open(allowUnreportedRegions = false): Promise<StateStore> {
        latencyStore = await createStore({ latencyPolicies: policies, allowUnreportedRegions });
        for (const region of regions) {
          await readyNode(latencyStore, `node-${region}`, [{ model: 'L4', count: 1 }], 0, { region });
        }
        return latencyStore;
      }

      /** Fresh telemetry from every node at `now` (staleness is not what these tests are about). */
      async function report(now: number) {
        for (const region of regions)
          await latencyStore.recordTelemetry(`node-${region}`, healthyReport(1), now);
      }

      async function fill(store: StateStore, region: string, now = 0) {
        const filled = await store.createSession(
          sessionSpec(`fill-${region}`, heavyFormat, { region }),
          createOptions(now),
        );
        expect(filled.kind).toBe('assigned');
      }

      async function placedNode(store: StateStore, id: string) {
        return (await store.getSession(id))?.placement?.nodeId ?? null;
      }

      const pass = (store: StateStore, now: number) =>
        store.placeQueued(now, 'packed', { rest: leaseMs, websocket: leaseMs });

      afterEach(async () => {
        if (!latencyStore) return;
        if (cleanup) await cleanup(latencyStore);
        else await latencyStore.close();
      });

      it('queues rather than go past the cap: eu full, us (60 ms) waits for the 100 ms policy at 5 s', async () => {
        const s = await open();
        await fill(s, 'eu');
        const asked = await s.createSession(sessionSpec('g', heavyFormat, { latencies }), createOptions(0));
        expect(asked.kind).toBe('queued');
        expect(asked.kind === 'queued' && asked.session.latencies).toEqual(latencies);
        expect(await pass(s, 4_999)).toEqual([]);
        const placed = await pass(s, 5_000);
        expect(placed.map((session) => session.placement?.nodeId)).toEqual(['node-us']);
        expect(placed[0]!.latencies).toEqual(latencies);
        await expectInvariant(s);
      });

      it('places in the lowest latency region with room: eu when it frees before the cap relaxes', async () => {
        const s = await open();
        await fill(s, 'eu');
        await s.createSession(sessionSpec('g', heavyFormat, { latencies }), createOptions(0));
        await s.endSession('fill-eu', 'released', 1_000);
        expect((await pass(s, 2_000)).map((session) => session.id)).toEqual(['g']);
        expect(await placedNode(s, 'g')).toBe('node-eu');
        const direct = await s.createSession(
          sessionSpec('h', lightFormat, { latencies: { us: 30, eu: 30 } }),
          createOptions(2_000),
        );
        // A tie on latency goes to the region first by name.
        expect(direct.kind === 'assigned' && direct.session.placement?.nodeId).toBe('node-eu');
        await expectInvariant(s);
      });

      it('allows every reported region after the last policy (25 s): ap at 150 ms', async () => {
        const s = await open();
        await fill(s, 'eu');
        await fill(s, 'us');
        await s.createSession(sessionSpec('g', heavyFormat, { latencies }), createOptions(0));
        await report(5_000);
        expect(await pass(s, 5_000)).toEqual([]);
        await report(24_999);
        expect(await pass(s, 24_999)).toEqual([]);
        expect((await pass(s, 25_000)).map((session) => session.placement?.nodeId)).toEqual(['node-ap']);
        await expectInvariant(s);
      });

      it('keeps regions the gamer did not report excluded, unless allowUnreportedRegions', async () => {
        for (const allow of [false, true]) {
          const s = await open(allow);
          await fill(s, 'eu');
          const asked = await s.createSession(
            sessionSpec('g', heavyFormat, { latencies: { eu: 20 } }),
            createOptions(0),
          );
          // Never while a cap is in force: an unreported latency is not known to be within it.
          expect(asked.kind).toBe('queued');
          await report(25_000);
          const placed = await pass(s, 25_000);
          expect(placed.map((session) => session.id)).toEqual(allow ? ['g'] : []);
          if (allow) expect(['node-us', 'node-ap']).toContain(placed[0]!.placement?.nodeId);
          await expectInvariant(s);
          if (cleanup) await cleanup(s);
          else await s.close();
          latencyStore = undefined as unknown as StateStore;
        }
      });

      it('places a request without latencies as before: any region with room', async () => {
        const s = await open();
        await fill(s, 'eu');
        const asked = await s.createSession(sessionSpec('g', heavyFormat), createOptions(0));
        expect(asked.kind).toBe('assigned');
        expect(['node-us', 'node-ap']).toContain(
          asked.kind === 'assigned' && asked.session.placement?.nodeId,
        );
        const empty = await s.createSession(
          sessionSpec('e', heavyFormat, { latencies: {} }),
          createOptions(0),
        );
        expect(empty.kind).toBe('assigned');
        await expectInvariant(s);
      });

      it('limits a request that also names a region to it, under the same cap', async () => {
        const s = await open();
        const asked = await s.createSession(
          sessionSpec('g', heavyFormat, { region: 'us', latencies }),
          createOptions(0),
        );
        expect(asked.kind).toBe('queued');
        expect(await pass(s, 5_000)).toHaveLength(1);
        expect(await placedNode(s, 'g')).toBe('node-us');
        await expectInvariant(s);
      });

      it('migrates within the cap in force at the session age, or queues', async () => {
        const s = await open();
        const asked = await s.createSession(sessionSpec('g', heavyFormat, { latencies }), createOptions(0));
        expect(asked.kind === 'assigned' && asked.session.placement?.nodeId).toBe('node-eu');
        const early = await s.migrateSession('g', 1_000, 'packed', 1_000 + leaseMs, 1_000 + queueWaitMs);
        expect(early?.session.state).toBe('queued');
        await s.setNodeState('node-eu', 'draining', 1_000, 60_000);
        await report(5_000);
        expect((await pass(s, 5_000)).map((session) => session.placement?.nodeId)).toEqual(['node-us']);
        await report(6_000);
        const late = await s.migrateSession('g', 6_000, 'packed', 6_000 + leaseMs, 6_000 + queueWaitMs);
        expect(late?.session.state).toBe('queued');
        await s.setNodeState('node-us', 'draining', 6_000, 60_000);
        await report(25_000);
        expect((await pass(s, 25_000)).map((session) => session.placement?.nodeId)).toEqual(['node-ap']);
        await expectInvariant(s);
      });
    });

    describe('session owners: an empty owner', () => {
      it('treats owner "" as no owner: never limited, and null on every record answered', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 8 }]);
        const options = createOptions(10, { maxOwnerSessions: 1 });
        const first = await store.createSession(sessionSpec('s1', lightFormat, { owner: '' }), options);
        const second = await store.createSession(sessionSpec('s2', lightFormat, { owner: '' }), options);
        expect(first).toMatchObject({ kind: 'assigned', session: { owner: null } });
        expect(second).toMatchObject({ kind: 'assigned', session: { owner: null } });
        expect((await store.getSession('s1'))?.owner).toBeNull();
        await expectInvariant(store);
      });
    });

    describe('telemetry: staleness by arrival time, whatever the order of arrival', () => {
      it('makes a GPU stale by its own report time when an older report arrives after a newer one', async () => {
        await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }], 5_000);
        // The clock stepped back: node-b's report carries an earlier arrival time than node-a's.
        await readyNode(store, 'node-b', [{ model: 'L4', count: 1 }], 1_000);
        await store.sweepStale(1_000 + staleAfterMs + 1);
        expect((await gpu('node-b')).stale).toBe(true);
        expect((await gpu('node-a')).stale).toBe(false);
        expect((await store.getNode('node-b'))!.state).toBe('unhealthy');
      });
    });

    describe('expiry: whether sessions still wait', () => {
      it('answers queueWaiting false when no session waits, as endSession does', async () => {
        await readyNode(store, 'node-a');
        await store.createSession(sessionSpec('s1'), createOptions(10));
        const ended = await store.expireSessions(10 + leaseMs);
        expect(ended.map((end) => [end.session.id, end.queueWaiting])).toEqual([['s1', false]]);
        await expectInvariant(store);
      });

      it('answers queueWaiting true while a session waits', async () => {
        await store.registerNode(registration('node-a'), 0);
        await store.createSession(
          sessionSpec('waits'),
          createOptions(10, { leaseExpiresAt: 10 + 3 * leaseMs, queueDeadline: 10 + 3 * leaseMs }),
        );
        await readyNode(store, 'node-b');
        const placed = await store.createSession(sessionSpec('s1'), createOptions(20));
        expect(placed.kind).toBe('assigned');
        const ended = await store.expireSessions(20 + leaseMs);
        expect(ended.map((end) => [end.session.id, end.queueWaiting])).toEqual([['s1', true]]);
        await expectInvariant(store);
      });
    });
  });
}
