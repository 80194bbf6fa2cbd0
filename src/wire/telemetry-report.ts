/**
 * The telemetry a node's gpu-probe reports for each GPU, `PUT /v1/nodes/:id/telemetry`. Every value is
 * optional: a value the GPU did not report is unknown (`null`/absent), never zero. The gateway validates
 * the body with `TelemetryReportSchema` (src/http/api-schemas.ts); test/wire/telemetry-report.test.ts
 * holds the two to the same shape and bounds.
 */

/** Highest GPU index a report may carry (reports hold at most 64 GPUs, indexes 0..63). */
export const maxGpuIndex = 63;

export interface GpuTelemetry {
  index: number;
  uuid?: string | null;
  name?: string | null;
  /** Percentages 0..100. */
  utilizationGpu?: number | null;
  utilizationMemory?: number | null;
  utilizationEncoder?: number | null;
  utilizationDecoder?: number | null;
  temperatureGpu?: number | null;
  memoryUsed?: number | null;
  memoryTotal?: number | null;
  powerDraw?: number | null;
  powerLimit?: number | null;
  encoderSessions?: number | null;
  encoderAvgFps?: number | null;
  throttleActive?: boolean | null;
}

export interface TelemetryReport {
  gpus: GpuTelemetry[];
  /** When the probe sampled, ms since epoch (informational: freshness uses arrival time). */
  ts?: number;
}
