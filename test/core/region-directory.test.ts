/**
 * The region directory keeps what it read current with node events instead of reading the whole fleet
 * again after each one (at 10,000 nodes a read takes seconds), reads again once its answer is old, but
 * no more often than 50 times a read's duration, and loses no event that arrives during a read. Real
 * embedded store (its fleet reads counted, stretched where a test needs a slow read); fake clock.
 */
import { describe, expect, it } from 'vitest';
import { RegionDirectory } from '../../src/fleet/region-directory.js';
import type { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import { healthyReport, registration } from '../store/store-fixtures.js';
import { countedFleetReads, sleep } from '../support/counted-fleet-reads.js';
import { FakeClock } from '../support/domain.js';

/** Registers a node in `region` and makes it ready; answers its view as the node-state event carries it. */
async function readyNode(store: EmbeddedStore, id: string, region: string, now: number) {
  await store.registerNode(registration(id, undefined, { region }), now);
  await store.recordTelemetry(id, healthyReport(1), now);
  return (await store.getNode(id))!;
}

describe('region directory', () => {
  it('answers node events without reading the fleet again, and reads again once its answer is old', async () => {
    const clock = new FakeClock(1_000_000);
    const { store, reads } = countedFleetReads();
    const regions = new RegionDirectory({ store, now: () => clock.now(), maxAgeMs: 5_000 });
    await readyNode(store, 'west-1', 'eu-west', clock.now());
    expect((await regions.readyRegions()).map((entry) => entry.region)).toEqual(['eu-west']);
    expect(reads()).toBe(1);

    const east = await readyNode(store, 'east-1', 'us-east', clock.now());
    regions.handleEvent({ type: 'node-state', node: east });
    expect((await regions.readyRegions()).map((entry) => [entry.region, entry.nodes])).toEqual([
      ['eu-west', 1],
      ['us-east', 1],
    ]);
    expect([...(await regions.knownRegions())].sort()).toEqual(['eu-west', 'us-east']);
    const draining = await store.setNodeState('west-1', 'draining', clock.now(), clock.now() + 60_000);
    regions.handleEvent({ type: 'node-state', node: draining });
    expect((await regions.readyRegions()).map((entry) => entry.region)).toEqual(['us-east']);
    const removed = await store.removeNode('east-1', clock.now());
    regions.handleEvent({ type: 'node-removed', node: removed! });
    expect(await regions.readyRegions()).toEqual([]);
    expect(await regions.regionOf('west-1')).toBe('eu-west');
    expect(reads()).toBe(1);

    // What no event tells (here: a node registered without one) shows once the answer is 5 s old.
    await readyNode(store, 'north-1', 'eu-north', clock.now());
    clock.advance(5_000);
    await regions.readyRegions();
    await sleep(0);
    expect(reads()).toBe(2);
    expect((await regions.readyRegions()).map((entry) => entry.region)).toEqual(['eu-north']);
  });

  it('reads a slow fleet at most once per 50 times its read, answering from what it read meanwhile', async () => {
    const clock = new FakeClock(1_000_000);
    const { store, reads } = countedFleetReads(40);
    const regions = new RegionDirectory({ store, now: () => clock.now(), maxAgeMs: 100 });
    await readyNode(store, 'west-1', 'eu-west', clock.now());
    await regions.readyRegions();
    expect(reads()).toBe(1);
    // The read took >= 40 ms: the next one waits >= 2 s of the clock, however old maxAgeMs calls it.
    clock.advance(1_000);
    expect((await regions.readyRegions()).map((entry) => entry.region)).toEqual(['eu-west']);
    expect(reads()).toBe(1);
    // A node joins without an event; once old enough a read starts, and the question is answered at
    // once from what was read before (without the new node), the read's result afterwards.
    await readyNode(store, 'north-1', 'eu-north', clock.now());
    clock.advance(1_500);
    expect((await regions.readyRegions()).map((entry) => entry.region)).toEqual(['eu-west']);
    expect(reads()).toBe(2);
    await sleep(80);
    expect((await regions.readyRegions()).map((entry) => entry.region)).toEqual(['eu-north', 'eu-west']);
  });

  it('keeps a node event that arrives while a read is in flight', async () => {
    const clock = new FakeClock(1_000_000);
    const { store } = countedFleetReads(30);
    const regions = new RegionDirectory({ store, now: () => clock.now() });
    await readyNode(store, 'west-1', 'eu-west', clock.now());
    const first = regions.readyRegions();
    // The read has listed the fleet; this node joins after it, and its event comes before the read ends.
    await sleep(5);
    const east = await readyNode(store, 'east-1', 'us-east', clock.now());
    regions.handleEvent({ type: 'node-state', node: east });
    await first;
    expect((await regions.readyRegions()).map((entry) => entry.region)).toEqual(['eu-west', 'us-east']);
  });
});
