/**
 * The telemetry report has two spellings: the wire types the gpu-probe builds (src/wire) and the
 * TypeBox schema the gateway validates with (src/http/api-schemas.ts). These checks bind them, so one
 * cannot change without the other.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { readingsFromCsv } from '../../gpu-probe/src/telemetry-sample.js';
import {
  GpuTelemetrySchema,
  type TelemetryReportBody,
  TelemetryReportSchema,
  validateBody,
} from '../../src/http/api-schemas.js';
import { type GpuTelemetry, maxGpuIndex, type TelemetryReport } from '../../src/wire/index.js';

describe('wire: the telemetry report', () => {
  it('has the same shape as the schema the gateway validates it with', () => {
    expectTypeOf<TelemetryReportBody>().toEqualTypeOf<TelemetryReport>();
    expectTypeOf<TelemetryReportBody['gpus'][number]>().toEqualTypeOf<GpuTelemetry>();
  });

  it('bounds GPU indexes where the schema does', () => {
    expect(GpuTelemetrySchema.properties.index.maximum).toBe(maxGpuIndex);
    expect(TelemetryReportSchema.properties.gpus.maxItems).toBe(maxGpuIndex + 1);
  });

  it('accepts what the probe reads from nvidia-smi, unknown values included', () => {
    const csv = [
      'index, uuid, name, utilization.gpu [%], memory.used [MiB], temperature.gpu',
      `0, GPU-1, NVIDIA L4, 37 %, 2048 MiB, 55`,
      `${maxGpuIndex}, GPU-2, NVIDIA L4, [N/A], [Not Supported], 41`,
    ].join('\n');
    const report: TelemetryReport = { gpus: readingsFromCsv(csv), ts: 1_700_000_000_000 };
    expect(report.gpus.map((gpu) => gpu.index)).toEqual([0, maxGpuIndex]);
    expect(validateBody(TelemetryReportSchema, report)).toBe(report);
  });
});
