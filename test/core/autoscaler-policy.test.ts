import { describe, expect, it } from 'vitest';
import type { AutoscalerConfig } from '../../src/config/schema.js';
import { decideScaling } from '../../src/scaling/autoscaler-policy.js';
import { addReadyNode, createTestVca } from '../support/domain.js';

async function fleetWith(nodeCount: number, sessionsOnFirst = 0) {
  const vca = createTestVca();
  for (let i = 0; i < nodeCount; i++) await addReadyNode(vca, `n${i}`, 'L4');
  for (let i = 0; i < sessionsOnFirst; i++)
    await vca.sessions.request({ game: 'unigine-heaven', resolution: '1080p', fps: 60 }, 'rest', true);
  return vca;
}

type PolicyInput = Parameters<typeof decideScaling>[0];

function decide(
  vca: Awaited<ReturnType<typeof fleetWith>>,
  nodes: PolicyInput['nodes'],
  extra: Partial<Omit<PolicyInput, 'config'>> & { config?: Partial<AutoscalerConfig> } = {},
) {
  return decideScaling({
    now: vca.clock.now(),
    nodes,
    queueLength: 0,
    lastScaleUpAt: null,
    lastScaleDownAt: null,
    model: (name) => vca.catalog.findModel(name),
    ...extra,
    config: { ...vca.config.autoscaler, ...extra.config },
  });
}

describe('autoscaler policy', () => {
  it('scales up to refill the buffer of free reference slots', async () => {
    const vca = await fleetWith(1);
    const nodes = await vca.store.listNodes();
    // One empty L4 holds floor(0.9 / 0.25) = 3 reference slots; the buffer wants 8.
    const decision = decide(vca, nodes, { config: { bufferReferenceSlots: 8, nodeReferenceSlots: 3 } });
    expect(decision).toMatchObject({ action: 'scale-up', count: 2, freeSlots: 3 });
  });

  it('scales up for queued sessions even when the buffer is met, within maxScaleUpStep', async () => {
    const vca = await fleetWith(3);
    const nodes = await vca.store.listNodes();
    const decision = decide(vca, nodes, {
      queueLength: 40,
      config: { bufferReferenceSlots: 0, nodeReferenceSlots: 3, maxScaleUpStep: 5 },
    });
    expect(decision).toMatchObject({ action: 'scale-up', count: 5 });
  });

  it('never exceeds maxNodes and holds during the scale-up cooldown', async () => {
    const vca = await fleetWith(2);
    const nodes = await vca.store.listNodes();
    expect(decide(vca, nodes, { queueLength: 10, config: { maxNodes: 2 } })).toMatchObject({
      action: 'hold',
    });
    expect(
      decide(vca, nodes, {
        queueLength: 10,
        lastScaleUpAt: vca.clock.now() - 1000,
        config: { scaleUpCooldownSeconds: 60 },
      }),
    ).toMatchObject({ action: 'hold', reason: 'scale-up cooldown' });
  });

  it('counts provisioning nodes as coming capacity so one spike is not scaled twice', async () => {
    const vca = await fleetWith(0);
    await vca.fleet.registerNodes([
      { id: 'p1', host: '127.0.0.1', port: 1, protocol: 'webrtc', gpus: [{ model: 'L4', count: 1 }] },
    ]);
    const nodes = await vca.store.listNodes();
    expect(decide(vca, nodes, { config: { bufferReferenceSlots: 4, nodeReferenceSlots: 4 } })).toMatchObject({
      action: 'hold',
    });
  });

  it('scales down one surplus node, the least committed, after the cooldown', async () => {
    const vca = await fleetWith(3, 1);
    const nodes = await vca.store.listNodes();
    const decision = decide(vca, nodes, { config: { bufferReferenceSlots: 2, minNodes: 1 } });
    expect(decision.action).toBe('scale-down');
    if (decision.action === 'scale-down') {
      expect(decision.nodeIds).toHaveLength(1);
      expect(decision.nodeIds[0]).not.toBe('n0');
    }
    expect(
      decide(vca, nodes, { lastScaleDownAt: vca.clock.now() - 1000, config: { bufferReferenceSlots: 2 } }),
    ).toMatchObject({ action: 'hold', reason: 'scale-down cooldown' });
  });

  it('does not scale down below minNodes or while sessions are queued', async () => {
    const vca = await fleetWith(2);
    const nodes = await vca.store.listNodes();
    expect(decide(vca, nodes, { config: { bufferReferenceSlots: 0, minNodes: 2 } }).action).toBe('hold');
    expect(
      decide(vca, nodes, { queueLength: 1, config: { bufferReferenceSlots: 0, maxNodes: 2 } }).action,
    ).toBe('hold');
  });
});
