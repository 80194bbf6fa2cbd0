/** The telemetry of an unloaded node, as its gpu-probe reports it: what makes a registered node ready. */
import type { GpuTelemetry } from '../src/wire/index.js';

/** Idle telemetry for GPUs 0..count-1: nothing rendering, encoding or allocated, at 40 °C. */
export function idleGpus(count: number): GpuTelemetry[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    utilizationGpu: 0,
    utilizationEncoder: 0,
    memoryUsed: 0,
    temperatureGpu: 40,
    encoderSessions: 0,
  }));
}
