/**
 * Specification of the node endpoint cache behind session views. `views` plays a second gateway
 * instance on the same store: it hears the first instance's node events only when a test hands them
 * over (as the relay does), so a test that withholds them is a relay that lost its messages.
 */
import { describe, expect, it, vi } from 'vitest';
import { endpointTrustMs, SessionViews } from '../../src/http/assignment-view.js';
import type { VcaEvent } from '../../src/sessions/events.js';
import { addReadyNode, createTestVca, type TestVca } from '../support/domain.js';

function setUp() {
  const vca = createTestVca();
  const views = new SessionViews({
    store: vca.store,
    masterSecret: 'test-master-secret',
    ticketTtlSeconds: 60,
    now: () => vca.clock.now(),
  });
  return { vca, views };
}

/** Drains (and so removes) the empty node `x`, then registers `x` again on `host` and makes it ready. */
async function moveNode(vca: TestVca, host: string): Promise<VcaEvent[]> {
  const before = vca.seen.length;
  await vca.fleet.drainNode('x');
  vca.clock.advance(1_000);
  await vca.fleet.registerNodes([
    { id: 'x', host, port: 5900, protocol: 'webrtc', gpus: [{ model: 'L4', count: 1 }] },
  ]);
  return vca.seen.slice(before);
}

describe('session views: node endpoints cached per instance', () => {
  it('answers from the cache, without a store read, while nothing changes', async () => {
    const { vca, views } = setUp();
    await addReadyNode(vca, 'x', 'L4');
    const reads = vi.spyOn(vca.store, 'getNode');
    expect((await views.endpoint('x'))?.host).toBe('127.0.0.1');
    vca.clock.advance(endpointTrustMs - 1);
    expect((await views.endpoint('x'))?.host).toBe('127.0.0.1');
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it('a relayed removal drops the endpoint at once', async () => {
    const { vca, views } = setUp();
    await addReadyNode(vca, 'x', 'L4');
    await views.endpoint('x');
    const relayed = await moveNode(vca, '10.0.0.2');
    const removal = relayed.find((event) => event.type === 'node-removed');
    expect(removal).toBeDefined();
    views.handleEvent(removal!);
    expect((await views.endpoint('x'))?.host).toBe('10.0.0.2');
  });

  it('when the removal is lost, an event of the new registration drops the endpoint', async () => {
    const { vca, views } = setUp();
    await addReadyNode(vca, 'x', 'L4');
    await views.endpoint('x');
    const relayed = await moveNode(vca, '10.0.0.2');
    const registration = relayed.filter((event) => event.type === 'node-state').at(-1)!;
    expect(registration.type === 'node-state' && registration.node.host).toBe('10.0.0.2');
    views.handleEvent(registration);
    expect((await views.endpoint('x'))?.host).toBe('10.0.0.2');
  });

  it('an event of the cached registration keeps the endpoint', async () => {
    const { vca, views } = setUp();
    const node = await addReadyNode(vca, 'x', 'L4');
    await views.endpoint('x');
    const reads = vi.spyOn(vca.store, 'getNode');
    views.handleEvent({ type: 'node-state', node });
    await views.endpoint('x');
    expect(reads).not.toHaveBeenCalled();
  });

  it('when every message is lost, a stale endpoint is served for at most endpointTrustMs', async () => {
    const { vca, views } = setUp();
    await addReadyNode(vca, 'x', 'L4');
    await views.endpoint('x');
    const readAt = vca.clock.now();
    await moveNode(vca, '10.0.0.2');
    vca.clock.current = readAt + endpointTrustMs - 1;
    expect((await views.endpoint('x'))?.host).toBe('127.0.0.1');
    vca.clock.current = readAt + endpointTrustMs;
    expect((await views.endpoint('x'))?.host).toBe('10.0.0.2');
  });

  it('a removal heard while the store is read does not let the read re-cache the old endpoint', async () => {
    const { vca, views } = setUp();
    const node = await addReadyNode(vca, 'x', 'L4');
    // The read starts before the removal is heard and answers what it saw.
    const reading = views.endpoint('x');
    views.handleEvent({ type: 'node-removed', node: { ...node, state: 'removed' } });
    expect((await reading)?.host).toBe('127.0.0.1');
    await moveNode(vca, '10.0.0.2');
    expect((await views.endpoint('x'))?.host).toBe('10.0.0.2');
  });
});
