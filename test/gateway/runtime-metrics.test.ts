import perfHooks from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

/** prom-client 15's default series the dashboard and the alert rules read. */
const runtimeSeries = [
  /^process_cpu_seconds_total \d/m,
  /^process_resident_memory_bytes \d/m,
  /^process_start_time_seconds \d/m,
  /^nodejs_eventloop_lag_seconds \d/m,
  /^nodejs_eventloop_lag_p99_seconds \d/m,
  /^nodejs_heap_size_used_bytes \d/m,
  /^# TYPE nodejs_gc_duration_seconds histogram$/m,
];

const gateways: TestGateway[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
});

describe('metrics: process and runtime series', () => {
  it('two gateways in one process each serve the default series from their own registry', async () => {
    gateways.push(await startTestGateway(), await startTestGateway());
    for (const gateway of gateways) {
      const response = await gateway.request('operator', 'GET', '/metrics');
      expect(response.status).toBe(200);
      for (const series of runtimeSeries) expect(response.body).toMatch(series);
      // Still the gateway's own series next to them.
      expect(response.body).toMatch(/^# TYPE vca_sessions_queued gauge$/m);
    }
  });

  it('stopping a gateway stops its event-loop delay monitor and GC observer', async () => {
    const monitor = vi.spyOn(perfHooks, 'monitorEventLoopDelay');
    const disconnect = vi.spyOn(perfHooks.PerformanceObserver.prototype, 'disconnect');
    const gateway = await startTestGateway();
    expect(monitor).toHaveBeenCalledTimes(1);
    const histogram = monitor.mock.results[0]!.value as perfHooks.IntervalHistogram;
    await gateway.close();
    // disable() answers false when the monitor was already off.
    expect(histogram.disable()).toBe(false);
    expect(disconnect).toHaveBeenCalledTimes(1);
  });
});
