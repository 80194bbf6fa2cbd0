/**
 * A /metrics scrape reads the fleet once: the gauges that need every node (vca_nodes, vca_gpus_stale and
 * the per-GPU load) share one store read, which on a large Redis fleet is the costly part of a scrape.
 * A later scrape reads anew, unless the last read was long: then at most once per 50 times its duration.
 * Real embedded store and prom-client registry; the store's reads are counted (and stretched where a test
 * needs a slow read).
 */
import { describe, expect, it } from 'vitest';
import { VcaMetrics } from '../../src/metrics/vca-metrics.js';
import { healthyReport, registration } from '../store/store-fixtures.js';
import { countedFleetReads, sleep } from '../support/counted-fleet-reads.js';

function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('metrics: one fleet read per scrape', () => {
  it('answers every fleet gauge from one read, and reads again for the next scrape', async () => {
    const { store, reads } = countedFleetReads();
    const now = Date.now();
    await store.registerNode(registration('ready-node', [{ model: 'L4', count: 2 }]), now);
    await store.recordTelemetry('ready-node', healthyReport(2), now);
    await store.registerNode(registration('new-node'), now);
    const metrics = new VcaMetrics({ store, perGpuSeriesLimit: 100 });

    const first = await metrics.registry.metrics();
    expect(reads()).toBe(1);
    expect(sample(first, 'vca_nodes{state="ready"}')).toBe(1);
    expect(sample(first, 'vca_nodes{state="provisioning"}')).toBe(1);
    expect(sample(first, 'vca_gpus_stale')).toBe(0);
    expect(first).toMatch(/^vca_gpu_effective_load_ratio\{node="ready-node",gpu="1",dimension="gpu"\} /m);

    // The next scrape, past the reuse window, sees what changed since: a new node ready, the first silent.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const later = now + 10_000;
    await store.recordTelemetry('new-node', healthyReport(1), later);
    await store.sweepStale(later);
    const second = await metrics.registry.metrics();
    expect(reads()).toBe(2);
    expect(sample(second, 'vca_nodes{state="ready"}')).toBe(1);
    expect(sample(second, 'vca_nodes{state="unhealthy"}')).toBe(1);
    expect(sample(second, 'vca_gpus_stale')).toBe(2);
  });

  it('keeps a slow read for 50 times its duration, then reads again', async () => {
    const { store, reads } = countedFleetReads(40);
    const now = Date.now();
    await store.registerNode(registration('slow-node'), now);
    const metrics = new VcaMetrics({ store, perGpuSeriesLimit: 100 });
    const firstRead = performance.now();
    expect(sample(await metrics.registry.metrics(), 'vca_nodes{state="provisioning"}')).toBe(1);
    expect(reads()).toBe(1);
    // A read of >= 40 ms serves >= 2 s: scrapes until then answer what was read, the next reads anew.
    await store.recordTelemetry('slow-node', healthyReport(1), now);
    await sleep(1200);
    expect(sample(await metrics.registry.metrics(), 'vca_nodes{state="provisioning"}')).toBe(1);
    expect(reads()).toBe(1);
    let text = '';
    while (reads() < 2 && performance.now() - firstRead < 10_000) {
      await sleep(100);
      text = await metrics.registry.metrics();
    }
    expect(reads()).toBe(2);
    expect(performance.now() - firstRead).toBeGreaterThanOrEqual(2000);
    expect(sample(text, 'vca_nodes{state="ready"}')).toBe(1);
  });
});
