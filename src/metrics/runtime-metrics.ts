/**
 * Process and Node.js runtime series (prom-client's default metrics: `process_cpu_seconds_total`,
 * `process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`, `nodejs_gc_duration_seconds`, ...)
 * in one gateway's own Registry, with a stop() that ends what they leave running.
 *
 * collectDefaultMetrics starts two things and returns no handle to either: an event-loop delay
 * histogram (perf_hooks.monitorEventLoopDelay, a timer firing every 10 ms) and a PerformanceObserver
 * for GC. Left alone, every gateway a process ever started keeps both forever. It creates them
 * synchronously through the `perf_hooks` module object, so they are caught while it runs.
 */
// The default import is the CommonJS object prom-client's require('perf_hooks') returns; named
// imports are bindings that would not see the swaps below.
import perfHooks, {
  type IntervalHistogram,
  type PerformanceObserver as NodePerformanceObserver,
} from 'node:perf_hooks';
import { collectDefaultMetrics, type Registry } from 'prom-client';

export interface RuntimeMetrics {
  /** Ends the event-loop delay monitor and the GC observer; the series stay, frozen. Idempotent. */
  stop(): void;
}

export function collectRuntimeMetrics(register: Registry): RuntimeMetrics {
  const histograms: IntervalHistogram[] = [];
  const observers: NodePerformanceObserver[] = [];
  const { monitorEventLoopDelay, PerformanceObserver } = perfHooks;
  perfHooks.monitorEventLoopDelay = (options) => {
    const histogram = monitorEventLoopDelay(options);
    histograms.push(histogram);
    return histogram;
  };
  perfHooks.PerformanceObserver = class extends PerformanceObserver {
    constructor(callback: ConstructorParameters<typeof PerformanceObserver>[0]) {
      super(callback);
      observers.push(this);
    }
  };
  try {
    collectDefaultMetrics({ register });
  } finally {
    perfHooks.monitorEventLoopDelay = monitorEventLoopDelay;
    perfHooks.PerformanceObserver = PerformanceObserver;
  }
  return {
    stop() {
      for (const histogram of histograms) histogram.disable();
      for (const observer of observers) observer.disconnect();
    },
  };
}
