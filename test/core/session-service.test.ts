import { describe, expect, it } from 'vitest';
import { isVcaError } from '../../src/errors.js';
import { addReadyNode, createTestVca, expectInvariant } from '../support/domain.js';

const heaven1080 = { game: 'unigine-heaven', resolution: '1080p', fps: 60 };

describe('sessions: request', () => {
  it('assigns a session to a ready GPU and commits its cost', async () => {
    const vca = createTestVca();
    await addReadyNode(vca, 'n1', 'L4');
    const outcome = await vca.sessions.request(heaven1080, 'rest', true);
    expect(outcome.kind).toBe('assigned');
    expect(outcome.session.placement).toMatchObject({ nodeId: 'n1', gpuIndex: 0, model: 'L4' });
    const node = await vca.store.getNode('n1');
    expect(node?.gpus[0]?.committed).toEqual(outcome.session.placement?.cost);
    await expectInvariant(vca);
  });

  it('rejects unknown titles, formats and rates with specific codes', async () => {
    const vca = createTestVca();
    const codeOf = async (ask: Record<string, unknown>) => {
      try {
        await vca.sessions.request(ask as never, 'rest', true);
        return 'none';
      } catch (error) {
        return isVcaError(error) ? error.code : 'not-a-vca-error';
      }
    };
    expect(await codeOf({ ...heaven1080, game: 'pong-2099' })).toBe('VCA_ERR_UNKNOWN_GAME');
    expect(await codeOf({ ...heaven1080, resolution: '1080i' })).toBe('VCA_ERR_BAD_RESOLUTION');
    expect(await codeOf({ ...heaven1080, fps: 75 })).toBe('VCA_ERR_FPS_NOT_ALLOWED');
    expect(await codeOf({ ...heaven1080, priority: 'vip' })).toBe('VCA_ERR_UNKNOWN_PRIORITY');
    expect(await codeOf({ ...heaven1080, gpuModels: ['Voodoo 2'] })).toBe('VCA_ERR_UNKNOWN_GPU_MODEL');
    expect(await codeOf({ ...heaven1080, gpuModels: ['H100'] })).toBe('VCA_ERR_UNPLACEABLE');
  });

  it('accepts 1920x1080, 1080p and 4k spellings of a resolution', async () => {
    const vca = createTestVca();
    await addReadyNode(vca, 'n1', 'L40S');
    const a = await vca.sessions.request({ ...heaven1080, resolution: '1920x1080' }, 'rest', true);
    const b = await vca.sessions.request({ ...heaven1080, resolution: '4k', fps: 30 }, 'rest', true);
    expect([a.session.width, a.session.height]).toEqual([1920, 1080]);
    expect([b.session.width, b.session.height]).toEqual([3840, 2160]);
  });

  it('queues when nothing fits, refuses when asked not to wait, and when the queue is full', async () => {
    const vca = createTestVca({ queue: { maxLength: 1 } });
    const queued = await vca.sessions.request(heaven1080, 'rest', true);
    expect(queued).toMatchObject({ kind: 'queued', position: 1 });
    await expect(vca.sessions.request(heaven1080, 'rest', false)).rejects.toMatchObject({
      code: 'VCA_ERR_NO_CAPACITY',
    });
    await expect(vca.sessions.request(heaven1080, 'rest', true)).rejects.toMatchObject({
      code: 'VCA_ERR_QUEUE_FULL',
    });
  });

  it('promotes queued sessions when a node becomes ready', async () => {
    const vca = createTestVca();
    const queued = await vca.sessions.request(heaven1080, 'websocket', true);
    await addReadyNode(vca, 'n1', 'L4');
    await vca.flush();
    const session = await vca.sessions.get(queued.session.id);
    expect(session.state).toBe('assigned');
    expect(vca.seen.some((e) => e.type === 'session-assigned' && e.session.id === queued.session.id)).toBe(
      true,
    );
  });
});

describe('sessions: leases', () => {
  it('expires a REST session whose heartbeats stop, exactly once, and frees its GPU', async () => {
    const vca = createTestVca({ leases: { restSeconds: 10 } });
    await addReadyNode(vca, 'n1', 'L4');
    const { session } = await vca.sessions.request(heaven1080, 'rest', true);
    vca.clock.advance(8_000);
    await vca.sessions.heartbeat(session.id);
    await vca.fleet.recordTelemetry('n1', { gpus: [{ index: 0, utilizationGpu: 0 }] });
    vca.clock.advance(8_000);
    await vca.sessions.tick();
    expect((await vca.sessions.get(session.id)).state).toBe('assigned');
    await vca.fleet.recordTelemetry('n1', { gpus: [{ index: 0, utilizationGpu: 0 }] });
    vca.clock.advance(3_000);
    await vca.sessions.tick();
    const ended = await vca.sessions.get(session.id);
    expect(ended).toMatchObject({ state: 'ended', endReason: 'lease-expired' });
    expect(vca.seen.filter((e) => e.type === 'session-ended')).toHaveLength(1);
    expect((await vca.store.getNode('n1'))?.gpus[0]?.committed.gpu).toBe(0);
    await expect(vca.sessions.heartbeat(session.id)).rejects.toMatchObject({ code: 'VCA_ERR_SESSION_ENDED' });
    expect(await vca.sessions.end(session.id, 'released')).toBeUndefined();
  });

  it('times out a queued session', async () => {
    const vca = createTestVca({ queue: { timeoutSeconds: 5 } });
    const queued = await vca.sessions.request(heaven1080, 'websocket', true);
    await vca.sessions.renewLeases([queued.session.id], 'websocket');
    vca.clock.advance(5_000);
    await vca.sessions.tick();
    expect(await vca.sessions.get(queued.session.id)).toMatchObject({
      state: 'ended',
      endReason: 'queue-timeout',
    });
  });
});

describe('fleet: drain', () => {
  it('takes no new sessions on a draining node and drains it when the last session ends', async () => {
    const vca = createTestVca();
    await addReadyNode(vca, 'n1', 'L4');
    const { session } = await vca.sessions.request(heaven1080, 'rest', true);
    await vca.fleet.drainNode('n1', 60_000);
    await expect(vca.sessions.request(heaven1080, 'rest', false)).rejects.toMatchObject({
      code: 'VCA_ERR_NO_CAPACITY',
    });
    await vca.sessions.end(session.id, 'released');
    expect(vca.seen.map((e) => e.type)).toEqual(expect.arrayContaining(['node-drained', 'node-removed']));
    expect(await vca.store.getNode('n1')).toBeUndefined();
  });

  it('migrates remaining sessions at the deadline and reports the drained node', async () => {
    const vca = createTestVca();
    await addReadyNode(vca, 'n1', 'L4');
    const { session } = await vca.sessions.request(heaven1080, 'websocket', true);
    await addReadyNode(vca, 'n2', 'L4');
    await vca.fleet.drainNode('n1', 30_000);
    vca.clock.advance(30_000);
    await vca.sessions.renewLeases([session.id], 'websocket');
    await vca.fleet.recordTelemetry('n2', { gpus: [{ index: 0, utilizationGpu: 0 }] });
    await vca.fleet.tick();
    const moved = await vca.sessions.get(session.id);
    expect(moved.placement?.nodeId).toBe('n2');
    expect(moved.migrations).toBe(1);
    expect(vca.seen.some((e) => e.type === 'session-migrating' && e.from.nodeId === 'n1')).toBe(true);
    expect(vca.seen.some((e) => e.type === 'node-drained' && e.node.id === 'n1')).toBe(true);
    await expectInvariant(vca);
  });

  it('picks the least committed nodes as victims for a count', async () => {
    const vca = createTestVca();
    await addReadyNode(vca, 'busy', 'L4');
    await vca.sessions.request(heaven1080, 'rest', true);
    await addReadyNode(vca, 'idle', 'L4');
    const victims = await vca.fleet.drainCount(1);
    expect(victims.map((node) => node.id)).toEqual(['idle']);
  });

  it('undrains a draining node back to ready', async () => {
    const vca = createTestVca();
    await addReadyNode(vca, 'n1', 'L4');
    await vca.sessions.request(heaven1080, 'rest', true);
    await vca.fleet.drainNode('n1');
    expect((await vca.fleet.undrainNode('n1')).state).toBe('ready');
    await expect(vca.fleet.undrainNode('n1')).rejects.toMatchObject({ code: 'VCA_ERR_NODE_STATE' });
  });
});
