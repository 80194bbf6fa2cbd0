/** Node telemetry as the cluster receives it: the wire contract's report types (src/wire). */
export type { GpuTelemetry, TelemetryReport } from '../wire/index.js';
