/**
 * One GPU's reading as the gateway's telemetry schema takes it: nvidia-smi record -> camelCase fields,
 * every value a number, boolean or null. A value nvidia-smi could not give (`[N/A]`, `[Not Supported]`,
 * empty, garbled) is null — unknown — never 0, because the gateway reads 0 as "idle".
 */
import { type GpuTelemetry, maxGpuIndex } from '../../src/wire/index.js';
import type { SmiRecord } from './csv-parser.js';
import { clockEventField, legacyClockEventField } from './query-fields.js';

/** Every field always present (null when unknown), so the pushed JSON has one stable shape. */
export interface GpuReading extends GpuTelemetry {
  index: number;
  uuid: string | null;
  name: string | null;
  utilizationGpu: number | null;
  utilizationMemory: number | null;
  utilizationEncoder: number | null;
  utilizationDecoder: number | null;
  temperatureGpu: number | null;
  memoryUsed: number | null;
  memoryTotal: number | null;
  powerDraw: number | null;
  powerLimit: number | null;
  encoderSessions: number | null;
  encoderAvgFps: number | null;
  throttleActive: boolean | null;
}

/**
 * Clock-event reasons that mean the GPU is slowed by heat or power and so has less capacity than its
 * model says (NVML `nvmlClocksEventReason*`):
 * - 0x04 SW power cap: the driver holds clocks down to stay under `power.limit`
 * - 0x08 HW slowdown: the board asserted slowdown (heat or power-supply trouble)
 * - 0x20 SW thermal slowdown: the driver cools the GPU below its max operating temperature
 * - 0x40 HW thermal slowdown: the hardware protects itself from overheating
 * - 0x80 HW power brake slowdown: an external power-brake signal (the PSU or chassis asked)
 * Not counted, because they say nothing about lost capacity:
 * - 0x01 GPU idle (clocks drop because there is no work: the normal idle state, see the idle captures)
 * - 0x02 applications clocks setting (an operator pinned clocks), 0x10 sync boost (clocks matched to a
 *   peer GPU), 0x100 display clock setting, and any bit NVML may add later.
 */
const capacityLosingClockEvents = 0x04n | 0x08n | 0x20n | 0x40n | 0x80n;

/** Text nvidia-smi prints instead of a value: `[N/A]`, `N/A`, `[Not Supported]`, `[Unknown Error]`, ... */
function isUnknown(text: string | undefined): boolean {
  if (text === undefined) return true;
  const value = text.trim();
  if (value === '') return true;
  if (value.startsWith('[') && value.endsWith(']')) return true;
  return /^(n\/a|not supported|unknown error|unknown|insufficient permissions|gpu is lost|nan)$/i.test(value);
}

const numberWithOptionalUnit = /^([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*(?:%|[a-z]+)?$/i;

/** `54`, `54 %`, `1235 MiB`, `110.52 W` -> the number; anything else -> null. */
export function parseSmiNumber(text: string | undefined): number | null {
  if (isUnknown(text)) return null;
  const match = numberWithOptionalUnit.exec(text!.trim());
  if (!match) return null;
  const value = Number(match[1]);
  return Number.isFinite(value) ? value : null;
}

export function parseSmiText(text: string | undefined): string | null {
  return isUnknown(text) ? null : text!.trim();
}

/** `0x0000000000000001` (or a decimal) -> whether any capacity-losing reason is active; null if unknown. */
export function parseThrottleActive(text: string | undefined): boolean | null {
  if (isUnknown(text)) return null;
  const value = text!.trim();
  let mask: bigint;
  try {
    if (/^0x[0-9a-f]+$/i.test(value) || /^\d+$/.test(value)) mask = BigInt(value);
    else return null;
  } catch {
    return null;
  }
  return (mask & capacityLosingClockEvents) !== 0n;
}

/** The GPU index of a record, or undefined when it is not a plain integer (MIG rows, garbage). */
function recordIndex(record: SmiRecord): number | undefined {
  const text = record.get('index')?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const index = Number(text);
  return index <= maxGpuIndex ? index : undefined;
}

function clampPercent(value: number | null): number | null {
  return value === null ? null : Math.min(100, Math.max(0, value));
}

function nonNegative(value: number | null): number | null {
  return value === null || value < 0 ? null : value;
}

/** Maps one record; undefined when the row does not describe a whole GPU the gateway can address. */
export function toGpuReading(record: SmiRecord): GpuReading | undefined {
  const index = recordIndex(record);
  if (index === undefined) return undefined;
  const number = (field: string) => parseSmiNumber(record.get(field));
  const sessions = nonNegative(number('encoder.stats.sessioncount'));
  const temperature = number('temperature.gpu');
  return {
    index,
    uuid: parseSmiText(record.get('uuid'))?.slice(0, 128) ?? null,
    name: parseSmiText(record.get('name'))?.slice(0, 128) ?? null,
    utilizationGpu: clampPercent(number('utilization.gpu')),
    utilizationMemory: clampPercent(number('utilization.memory')),
    utilizationEncoder: clampPercent(number('utilization.encoder')),
    utilizationDecoder: clampPercent(number('utilization.decoder')),
    temperatureGpu: temperature !== null && temperature >= -50 && temperature <= 200 ? temperature : null,
    memoryUsed: nonNegative(number('memory.used')),
    memoryTotal: nonNegative(number('memory.total')),
    powerDraw: nonNegative(number('power.draw')),
    powerLimit: nonNegative(number('power.limit')),
    encoderSessions: sessions === null ? null : Math.round(sessions),
    encoderAvgFps: nonNegative(number('encoder.stats.averagefps')),
    throttleActive: parseThrottleActive(
      record.get(clockEventField.toLowerCase()) ?? record.get(legacyClockEventField.toLowerCase()),
    ),
  };
}
