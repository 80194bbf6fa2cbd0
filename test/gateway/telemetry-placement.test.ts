import { afterEach, describe, expect, it } from 'vitest';
import { idleTelemetry, startTestGateway, type TestGateway } from '../support/gateway.js';
import {
  advance,
  eventually,
  expectLedgerBalanced,
  expectProblem,
  getNode,
  getSession,
  halfL4,
  readyNode,
  reportIdle,
} from './gamer-flow.js';

let gw: TestGateway;
afterEach(async () => gw?.close());

/** One GPU's telemetry: idle unless overridden. */
function gpuSample(index: number, values: Record<string, unknown> = {}) {
  return { ...idleTelemetry(index + 1)[index], ...values };
}

async function requestSession(body: Record<string, unknown> = halfL4) {
  return gw.request('gamer', 'POST', '/v1/sessions', body);
}

describe('telemetry-driven placement: measured load', () => {
  it('a GPU measured at 85 % takes no session even under packed, until its measured load drops', async () => {
    gw = await startTestGateway({ placement: { strategy: 'packed' } });
    const nodeA = await readyNode(gw, 'render-a');
    const nodeB = await readyNode(gw, 'render-b');
    const busy = await gw.telemetry('render-a', nodeA.token, [gpuSample(0, { utilizationGpu: 85 })]);
    expect(busy.status).toBe(200);
    const viewA = await getNode(gw, 'render-a');
    expect(viewA.gpus[0].committed.gpu).toBe(0);
    expect(viewA.gpus[0].effective.gpu).toBeGreaterThan(viewA.gpus[0].committed.gpu);

    const first = await requestSession();
    const second = await requestSession();
    expect([first.body.node.id, second.body.node.id]).toEqual(['render-b', 'render-b']);
    // render-b holds 0.8 committed, render-a 0.85 measured: nothing fits anywhere.
    const third = await requestSession();
    expect(third.status).toBe(202);

    await gw.telemetry('render-a', nodeA.token, [gpuSample(0, { utilizationGpu: 5 })]);
    const promoted = await eventually(async () => {
      const session = await getSession(gw, third.body.sessionId);
      expect(session.state).toBe('assigned');
      return session;
    });
    expect(promoted.node.id).toBe('render-a');
    await reportIdle(gw, nodeB);
    await expectLedgerBalanced(gw);
  });

  it('a node whose telemetry stops takes no new session, keeps its running one, and is eligible again when it reports', async () => {
    gw = await startTestGateway();
    const nodeA = await readyNode(gw, 'render-a');
    const running = await requestSession();
    expect(running.body.node.id).toBe('render-a');
    const nodeB = await readyNode(gw, 'render-b');

    await advance(gw, 7);
    await reportIdle(gw, nodeB);
    await gw.tick();
    const silent = await getNode(gw, 'render-a');
    expect(silent.gpus[0]).toMatchObject({ stale: true, eligible: false });
    expect(silent.state).toBe('unhealthy');

    // Packed would prefer render-a (already 0.4 loaded); stale, it is skipped until render-b is full.
    expect((await requestSession()).body.node.id).toBe('render-b');
    expect((await requestSession()).body.node.id).toBe('render-b');
    const waiting = await requestSession();
    expect(waiting.status).toBe(202);
    expect(await getSession(gw, running.body.sessionId)).toMatchObject({
      state: 'assigned',
      node: { id: 'render-a' },
    });
    expect(silent.sessionIds).toEqual([running.body.sessionId]);

    const back = await gw.telemetry('render-a', nodeA.token, idleTelemetry(1));
    expect(back.body).toMatchObject({ state: 'ready', gpus: [{ index: 0, eligible: true }] });
    const promoted = await eventually(async () => {
      const session = await getSession(gw, waiting.body.sessionId);
      expect(session.state).toBe('assigned');
      return session;
    });
    expect(promoted.node.id).toBe('render-a');
    await expectLedgerBalanced(gw);
  });

  it('a temperature within the margin of the throttle temperature makes a GPU ineligible', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    // L4 throttles at 87 °C (config/gpus.yaml); the margin is 5 °C.
    const hot = await gw.telemetry('render-1', node.token, [gpuSample(0, { temperatureGpu: 86 })]);
    expect(hot.body.gpus[0].eligible).toBe(false);
    expectProblem(await requestSession({ ...halfL4, wait: false }), 503, 'VCA_ERR_NO_CAPACITY');
    const warm = await gw.telemetry('render-1', node.token, [gpuSample(0, { temperatureGpu: 82 })]);
    expect(warm.body.gpus[0].eligible).toBe(false);

    const cool = await gw.telemetry('render-1', node.token, [gpuSample(0, { temperatureGpu: 81 })]);
    expect(cool.body.gpus[0].eligible).toBe(true);
    expect((await requestSession({ ...halfL4, wait: false })).status).toBe(201);
    await expectLedgerBalanced(gw);
  });

  it('a GPU reporting throttleActive is ineligible', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const throttled = await gw.telemetry('render-1', node.token, [gpuSample(0, { throttleActive: true })]);
    expect(throttled.body.gpus[0].eligible).toBe(false);
    expectProblem(await requestSession({ ...halfL4, wait: false }), 503, 'VCA_ERR_NO_CAPACITY');
    const queued = await requestSession();
    expect(queued.status).toBe(202);

    await gw.telemetry('render-1', node.token, [gpuSample(0, { throttleActive: false })]);
    await eventually(async () =>
      expect((await getSession(gw, queued.body.sessionId)).state).toBe('assigned'),
    );
    await expectLedgerBalanced(gw);
  });

  it('a GeForce host at its 8 encoder sessions (measured across both GPUs) takes no new session', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'geforce-1', 'RTX 4080 SUPER', 2);
    expect((await getNode(gw, 'geforce-1')).encoderSessionLimit).toBe(8);
    const full = await gw.telemetry('geforce-1', node.token, [
      gpuSample(0, { encoderSessions: 5 }),
      gpuSample(1, { encoderSessions: 3 }),
    ]);
    expect(full.body.gpus).toEqual([
      { index: 0, eligible: false, stale: false },
      { index: 1, eligible: false, stale: false },
    ]);
    expectProblem(await requestSession({ ...halfL4, wait: false }), 503, 'VCA_ERR_NO_CAPACITY');

    const roomForOne = await gw.telemetry('geforce-1', node.token, [
      gpuSample(0, { encoderSessions: 4 }),
      gpuSample(1, { encoderSessions: 3 }),
    ]);
    expect(roomForOne.body.gpus.every((gpu: { eligible: boolean }) => gpu.eligible)).toBe(true);
    const placed = await requestSession({ ...halfL4, wait: false });
    expect(placed.status).toBe(201);
    expect(placed.body.node.id).toBe('geforce-1');
    await expectLedgerBalanced(gw);
  });
});

describe('telemetry-driven placement: bad reports', () => {
  it('telemetry naming an unknown GPU index is 422 VCA_ERR_GPU_NOT_FOUND and changes nothing', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const before = await getNode(gw, 'render-1');
    await advance(gw, 1);
    const rejected = await gw.telemetry('render-1', node.token, [
      gpuSample(0, { utilizationGpu: 70, temperatureGpu: 60 }),
      gpuSample(3),
    ]);
    expect(rejected.status).toBe(422);
    expect(rejected.body).toMatchObject({ code: 'VCA_ERR_GPU_NOT_FOUND' });
    expect(await getNode(gw, 'render-1')).toEqual(before);
  });

  it("telemetry for another node's id with this node's token is refused and changes nothing", async () => {
    gw = await startTestGateway();
    const nodeA = await readyNode(gw, 'render-a');
    await readyNode(gw, 'render-b');
    const before = await getNode(gw, 'render-b');
    const forged = await gw.telemetry('render-b', nodeA.token, [gpuSample(0, { utilizationGpu: 99 })]);
    expect([401, 403]).toContain(forged.status);
    expect(forged.body.code).toMatch(/^VCA_ERR_(UNAUTHORIZED|FORBIDDEN)$/);
    const asGamer = await gw.request('gamer', 'PUT', '/v1/nodes/render-b/telemetry', {
      gpus: [gpuSample(0, { utilizationGpu: 99 })],
    });
    expect(asGamer.status).toBe(403);
    expect(await getNode(gw, 'render-b')).toEqual(before);
  });
});

describe('telemetry-driven placement: cluster view', () => {
  it('GET /v1/cluster counts nodes by state, eligible GPUs and sessions', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-a');
    const running = await requestSession();
    expect(running.body.node.id).toBe('render-a');
    const nodeB = await readyNode(gw, 'render-b');
    await gw.registerNode('render-c', 'L4'); // registered, never reported: provisioning

    await advance(gw, 7);
    await reportIdle(gw, nodeB);
    await gw.tick();
    expect((await requestSession()).body.node.id).toBe('render-b');
    expect((await requestSession()).body.node.id).toBe('render-b');
    expect((await requestSession()).status).toBe(202);

    const cluster = await gw.request('operator', 'GET', '/v1/cluster');
    expect(cluster.status).toBe(200);
    expect(cluster.body).toMatchObject({
      nodes: { total: 3, byState: { ready: 1, unhealthy: 1, provisioning: 1 } },
      gpus: { total: 3, eligible: 1 },
      sessions: { assigned: 3, queued: 1 },
    });
    expect(cluster.body.committed.gpuEquivalents).toBeCloseTo(1.2, 2);
    await expectLedgerBalanced(gw);
  });
});
