/**
 * A /metrics scrape reads the fleet once: the gauges that need every node (vca_nodes, vca_gpus_stale and
 * the per-GPU load) share one store read, which on a large Redis fleet is the costly part of a scrape.
 * A later scrape reads anew. Real embedded store and prom-client registry; the store's reads are counted.
 */
import { describe, expect, it } from 'vitest';
import { VcaMetrics } from '../../src/metrics/vca-metrics.js';
import { createEmbeddedStore } from '../store/embedded-factory.js';
import { healthyReport, registration } from '../store/store-fixtures.js';

function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('metrics: one fleet read per scrape', () => {
  it('answers every fleet gauge from one read, and reads again for the next scrape', async () => {
    const store = createEmbeddedStore();
    let reads = 0;
    const listNodes = store.listNodes.bind(store);
    store.listNodes = () => {
      reads += 1;
      return listNodes();
    };
    const now = Date.now();
    await store.registerNode(registration('ready-node', [{ model: 'L4', count: 2 }]), now);
    await store.recordTelemetry('ready-node', healthyReport(2), now);
    await store.registerNode(registration('new-node'), now);
    const metrics = new VcaMetrics({ store, perGpuSeriesLimit: 100 });

    const first = await metrics.registry.metrics();
    expect(reads).toBe(1);
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
    expect(reads).toBe(2);
    expect(sample(second, 'vca_nodes{state="ready"}')).toBe(1);
    expect(sample(second, 'vca_nodes{state="unhealthy"}')).toBe(1);
    expect(sample(second, 'vca_gpus_stale')).toBe(2);
  });
});
