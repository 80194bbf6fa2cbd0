import { describe, expect, it } from 'vitest';
import { latencyCapAt } from '../../src/http/placement-latency.js';
import { LatencyWatch } from '../../src/sessions/latency-watch.js';
import type { SessionRecord } from '../../src/sessions/session.js';

const rules = {
  latencyPolicies: [
    { maxLatencyMs: 50, forSeconds: 5 },
    { maxLatencyMs: 100, forSeconds: 20 },
  ],
  allowUnreportedRegions: false,
};

function queued(id: string, latencies?: Record<string, number>): SessionRecord {
  return { id, state: 'queued', createdAt: 0, latencies, transport: 'websocket' } as unknown as SessionRecord;
}

const positions = (...ids: string[]) => ({
  type: 'queue-positions' as const,
  positions: new Map(ids.map((id, index) => [id, index + 1])),
});

describe('latency watch: relaxations of queued sessions', () => {
  it('reports each relaxation once, with the new cap, and forgets the session after the last policy', () => {
    const watch = new LatencyWatch(latencyCapAt(rules));
    watch.observe({ type: 'session-queued', session: queued('a', { eu: 70 }), position: 1 }, 0, true);
    expect(watch.observe(positions('a'), 4_999, true)).toEqual([]);
    expect(watch.observe(positions('a'), 5_000, true)).toEqual([
      { sessionId: 'a', queued: true, maxLatencyMs: 100, steps: 1, local: true },
    ]);
    expect(watch.observe(positions('a'), 6_000, true)).toEqual([]);
    expect(watch.observe(positions('a'), 25_000, true)).toEqual([
      { sessionId: 'a', queued: true, maxLatencyMs: null, steps: 1, local: true },
    ]);
    expect(watch.size).toBe(0);
  });

  it('counts every policy passed when a tick comes late, and the ones passed before an assignment', () => {
    const watch = new LatencyWatch(latencyCapAt(rules));
    watch.observe({ type: 'session-queued', session: queued('a', { eu: 70 }), position: 1 }, 0, true);
    expect(watch.observe(positions('a'), 30_000, true)).toMatchObject([{ steps: 2, maxLatencyMs: null }]);

    watch.observe({ type: 'session-queued', session: queued('b', { eu: 70 }), position: 1 }, 0, false);
    const assigned = { ...queued('b', { eu: 70 }), state: 'assigned', assignedAt: 5_200 } as SessionRecord;
    expect(
      watch.observe({ type: 'session-assigned', session: assigned, via: 'queue' }, 5_200, false),
    ).toEqual([{ sessionId: 'b', queued: false, maxLatencyMs: 100, steps: 1, local: false }]);
  });

  it('never holds a session without latencies, nor one no longer queued', () => {
    const watch = new LatencyWatch(latencyCapAt(rules));
    watch.observe({ type: 'session-queued', session: queued('plain'), position: 1 }, 0, true);
    watch.observe({ type: 'session-queued', session: queued('gone', { eu: 70 }), position: 2 }, 0, true);
    expect(watch.size).toBe(1);
    expect(watch.observe(positions(), 10_000, true)).toEqual([]);
    expect(watch.size).toBe(0);
  });
});
