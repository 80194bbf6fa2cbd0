/** A sample of every GPU at one moment, and the telemetry document (`PUT /v1/nodes/:id/telemetry` body) made from it. */
import type { TelemetryReport } from '../../src/wire/index.js';
import { SmiCsvParser } from './csv-parser.js';
import { type GpuReading, toGpuReading } from './gpu-reading.js';

export interface TelemetrySample {
  /** When the sample was taken, ms since epoch. */
  ts: number;
  /** One reading per GPU, by ascending index. */
  gpus: GpuReading[];
}

/** Exactly the body the probe pushes; `--once` prints the same. */
export interface TelemetryDocument extends TelemetryReport {
  gpus: GpuReading[];
  ts: number;
}

export function toTelemetryDocument(sample: TelemetrySample): TelemetryDocument {
  return { gpus: sample.gpus, ts: sample.ts };
}

/** Readings of a complete CSV text (header first, or `expectedFields` for a headerless one). */
export function readingsFromCsv(text: string, expectedFields?: readonly string[]): GpuReading[] {
  const parser = new SmiCsvParser(expectedFields ? { expectedFields } : {});
  const readings = [...parser.push(text), ...parser.end()].flatMap((record) => toGpuReading(record) ?? []);
  return byIndex(readings);
}

/** One reading per index (the last wins), ascending: the gateway must not see an index twice. */
export function byIndex(readings: readonly GpuReading[]): GpuReading[] {
  const unique = new Map<number, GpuReading>();
  for (const reading of readings) unique.set(reading.index, reading);
  return [...unique.values()].sort((left, right) => left.index - right.index);
}
