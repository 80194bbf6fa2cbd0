/**
 * The VCA's own autoscaler in a Heat group: it drains the member Heat removes next (not its own pick),
 * signals Heat once that node is empty, and Heat's notifications of the removal it then makes change
 * nothing more — the member drained ahead counts as Heat's victim although its node already left.
 */
import { describe, expect, it } from 'vitest';
import type { OrchestratorMembership } from '../../src/fleet/orchestrator-membership.js';
import { HookService } from '../../src/hooks/hook-service.js';
import { parseNotifications } from '../../src/hooks/index.js';
import { decideScaling, scaleDownCandidates } from '../../src/scaling/autoscaler-policy.js';
import { AutoscalerRunner, type ScaleSignal } from '../../src/scaling/autoscaler-runner.js';
import { createTestVca, type TestVca } from '../support/domain.js';
import { idleTelemetry } from '../support/gateway.js';

const small = { game: 'stardew-valley', resolution: '1080p', fps: 60 } as const;

function membership(member: string, createdAt: string, group = 'vca-asg'): OrchestratorMembership {
  return { kind: 'heat', stackId: `${group}-stack`, group, member, createdAt };
}

/**
 * h1 is Heat's oldest member and hosts a session (placed while it was the only node); h2..h4, younger,
 * stay empty: the VCA's own pick would be one of them. Registered out of Heat's order.
 */
async function heatFleet(): Promise<{ vca: TestVca; sessionId: string }> {
  const vca = createTestVca({
    autoscaler: { bufferReferenceSlots: 2, minNodes: 1, scaleDownCooldownSeconds: 0 },
  });
  const add = async (id: string, orchestrator: OrchestratorMembership) => {
    await vca.fleet.registerNodes([
      {
        id,
        host: '127.0.0.1',
        port: 5900,
        protocol: 'webrtc',
        gpus: [{ model: 'L4', count: 1 }],
        orchestrator,
      },
    ]);
    await vca.fleet.recordTelemetry(id, { gpus: idleTelemetry(1) });
  };
  await add('h1', membership('aaa', '2026-11-19T10:00:00Z'));
  const outcome = await vca.sessions.request(small, 'rest', false);
  expect(outcome.kind === 'assigned' && outcome.session.placement?.nodeId).toBe('h1');
  await add('h3', membership('ccc', '2026-11-19T10:02:00Z'));
  await add('h4', membership('ddd', '2026-11-19T10:03:00Z'));
  await add('h2', membership('bbb', '2026-11-19T10:01:00Z'));
  return { vca, sessionId: outcome.session.id };
}

function notification(messageId: string, phase: 'start' | 'end', capacity: number) {
  return {
    message_id: messageId,
    event_type: `orchestration.autoscaling.${phase}`,
    publisher_id: 'orchestration.render-ctl-1',
    payload: { groupname: 'vca-asg-stack', capacity, adjustment: -1, adjustment_type: 'change_in_capacity' },
  };
}

describe('autoscaler: Heat groups', () => {
  it('offers only each Heat group’s next victim, and every node outside a group', () => {
    const node = (id: string, orchestrator?: OrchestratorMembership) =>
      ({ id, orchestrator }) as unknown as Parameters<typeof scaleDownCandidates>[0][number];
    const candidates = scaleDownCandidates([
      node('h2', membership('bbb', '2026-11-19T10:01:00Z')),
      node('x'),
      node('h1', membership('aaa', '2026-11-19T10:00:00Z')),
      node('o2', membership('bbb', '2026-11-19T09:00:00Z', 'other-asg')),
      node('o1', membership('zzz', '2026-11-19T09:00:00Z', 'other-asg')),
    ]);
    expect(candidates.map((entry) => entry.id).sort()).toEqual(['h1', 'o2', 'x']);
  });

  it('scales down the member Heat removes next, although emptier members exist', async () => {
    const { vca } = await heatFleet();
    const decision = decideScaling({
      now: vca.clock.now(),
      nodes: await vca.store.listNodes(),
      queueLength: 0,
      lastScaleUpAt: null,
      lastScaleDownAt: null,
      config: vca.config.autoscaler,
      model: (name) => vca.catalog.findModel(name),
    });
    expect(decision).toMatchObject({ action: 'scale-down', nodeIds: ['h1'] });
  });

  it('drains Heat’s next victim, signals once it is empty, and Heat’s own removal of it drains nothing more', async () => {
    const { vca, sessionId } = await heatFleet();
    const signals: ScaleSignal[] = [];
    const runner = new AutoscalerRunner({
      store: vca.store,
      fleet: vca.fleet,
      catalog: vca.catalog,
      config: vca.config.autoscaler,
      clock: vca.clock,
      signal: (signal) => signals.push(signal),
    });
    vca.events.subscribe((event) => {
      if (event.type === 'node-drained') runner.nodeDrained(event.node);
    });
    expect(await runner.runOnce()).toMatchObject({ action: 'scale-down', nodeIds: ['h1'] });
    expect((await vca.store.getNode('h1'))!.state).toBe('draining');

    // Its session ends; the node drains, leaves, and Heat is told to shrink.
    await vca.sessions.end(sessionId, 'released');
    expect(await vca.store.getNode('h1')).toBeUndefined();
    expect(signals).toMatchObject([{ event: 'scale-down', count: 1, nodes: [{ id: 'h1' }] }]);

    // Heat removes its oldest member — h1 — and says so. Nothing else may drain.
    const hooks = new HookService({
      store: vca.store,
      fleet: vca.fleet,
      clock: vca.clock,
      idempotencyTtlMs: 60_000,
    });
    const [start] = parseNotifications(notification('m-start', 'start', 4));
    const started = await hooks.apply(start!);
    expect(started.outcome).toMatchObject({ victims: ['h1'], draining: [], error: null });
    const [end] = parseNotifications(notification('m-end', 'end', 3));
    const ended = await hooks.apply(end!);
    expect(ended.outcome).toMatchObject({ victims: ['h1'], removed: [], lost: 0, error: null });
    const states = Object.fromEntries((await vca.store.listNodes()).map((node) => [node.id, node.state]));
    expect(states).toEqual({ h2: 'ready', h3: 'ready', h4: 'ready' });

    // The next scale-down of the group: Heat's next member, h2.
    const [next] = parseNotifications(notification('m-start-2', 'start', 3));
    const nextOutcome = (await hooks.apply(next!)).outcome;
    expect(nextOutcome, JSON.stringify(nextOutcome)).toMatchObject({ victims: ['h2'] });
  });
});
