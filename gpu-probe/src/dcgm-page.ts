/**
 * A DCGM exporter `/metrics` page -> one reading per whole GPU, in the same shape nvidia-smi's rows
 * become (`GpuReading`), so the gateway gets the same telemetry document whichever source fed it.
 *
 * What this relies on, from NVIDIA's public dcgm-exporter documentation and source:
 * - Field names and units of the shipped default collector CSV (exporter 2.x to 4.8.x,
 *   https://github.com/NVIDIA/dcgm-exporter/blob/main/etc/default-counters.csv): `DCGM_FI_DEV_GPU_UTIL`,
 *   `DCGM_FI_DEV_MEM_COPY_UTIL`, `DCGM_FI_DEV_ENC_UTIL`, `DCGM_FI_DEV_DEC_UTIL` in %,
 *   `DCGM_FI_DEV_GPU_TEMP` in °C, `DCGM_FI_DEV_POWER_USAGE` in W, `DCGM_FI_DEV_FB_USED` /
 *   `DCGM_FI_DEV_FB_FREE` in MiB (the unit the telemetry document uses). The clock-event mask
 *   (`DCGM_FI_DEV_CLOCKS_EVENT_REASONS`, older name `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`; NVML's
 *   clock-event bits, the same as nvidia-smi's `clocks_event_reasons.active`) and the power limit (`DCGM_FI_DEV_POWER_MGMT_LIMIT`, W) are not in the default CSV: read where an
 *   operator's CSV adds them, unknown otherwise.
 * - Labels of a GPU series, from the exporter's render template
 *   (https://github.com/NVIDIA/dcgm-exporter/blob/main/internal/pkg/rendermetrics/render_metrics.go):
 *   `gpu` (the index), `UUID` (`uuid` with `--use-old-namespace`), `pci_bus_id`, `device`, `modelName`,
 *   then `GPU_I_PROFILE` and `GPU_I_ID` on a MIG instance's series only (which keep the parent's `gpu`
 *   and `UUID`), then `Hostname` (`hostname` since exporter 4.8.3, see
 *   https://docs.nvidia.com/datacenter/dcgm/latest/release-notes/dcgm-exporter.html).
 * - The exporter leaves a value DCGM does not have out of the page (the series is absent), but older ones let
 *   DCGM's "blank" sentinels through (the project README shows `DCGM_FI_DEV_MEMORY_TEMP ...
 *   9223372036854775794`, https://github.com/NVIDIA/dcgm-exporter#quickstart): both mean unknown here.
 * - Exporter 4.9.0 renames these fields and changes units (memory to bytes, utilization to a 0..1
 *   ratio; https://github.com/NVIDIA/dcgm-exporter/releases): its names are not read here yet, so such
 *   a page yields GPUs whose values are all unknown, never wrong numbers.
 */
import { maxGpuIndex } from '../../src/wire/index.js';
import { type GpuReading, parseThrottleActive } from './gpu-reading.js';
import { type PrometheusSample, parsePrometheusText } from './prometheus-text.js';
import { byIndex } from './telemetry-sample.js';

/** The DCGM fields read, by what they become. */
export const dcgmFields = Object.freeze({
  utilizationGpu: 'DCGM_FI_DEV_GPU_UTIL',
  utilizationMemory: 'DCGM_FI_DEV_MEM_COPY_UTIL',
  utilizationEncoder: 'DCGM_FI_DEV_ENC_UTIL',
  utilizationDecoder: 'DCGM_FI_DEV_DEC_UTIL',
  temperatureGpu: 'DCGM_FI_DEV_GPU_TEMP',
  memoryUsed: 'DCGM_FI_DEV_FB_USED',
  memoryFree: 'DCGM_FI_DEV_FB_FREE',
  powerDraw: 'DCGM_FI_DEV_POWER_USAGE',
  powerLimit: 'DCGM_FI_DEV_POWER_MGMT_LIMIT',
  clockEvents: 'DCGM_FI_DEV_CLOCKS_EVENT_REASONS',
  legacyClockEvents: 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS',
});

const readFields: ReadonlySet<string> = new Set(Object.values(dcgmFields));

/**
 * DCGM's blank sentinels (dcgm_structs.h): int32 blanks are 0x7ffffff0..0x7fffffff, int64 blanks start
 * at 0x7ffffffffffffff0, and the float blank is 2^47 and up. No reading in MiB, W, °C or % comes near.
 */
function isDcgmBlank(value: number): boolean {
  return (value >= 0x7ffffff0 && value <= 0x7fffffff) || value >= 2 ** 47;
}

export interface DcgmPage {
  /** Whole-GPU readings, ascending by index. */
  gpus: GpuReading[];
  /** MIG instance series seen (and left out of the whole-GPU values). */
  migSeries: number;
  /** The exporter's host (`Hostname`/`hostname` label) if it names one. */
  hostname: string | null;
}

interface GpuSeries {
  uuid: string | null;
  name: string | null;
  values: Map<string, number>;
}

function label(sample: PrometheusSample, ...names: string[]): string | null {
  for (const name of names) {
    const value = sample.labels.get(name);
    if (value !== undefined && value !== '') return value;
  }
  return null;
}

/** `gpu="3"` -> 3; anything that is not a plain index the gateway can take -> undefined. */
function gpuIndex(sample: PrometheusSample): number | undefined {
  const text = sample.labels.get('gpu');
  if (text === undefined || text === '' || text.length > 2) return undefined;
  for (const char of text) if (char < '0' || char > '9') return undefined;
  const index = Number(text);
  return index <= maxGpuIndex ? index : undefined;
}

const percent = (value: number | null) => (value === null ? null : Math.min(100, Math.max(0, value)));
const nonNegative = (value: number | null) => (value === null || value < 0 ? null : value);

/** The clock-event mask (a decimal integer on the page) -> whether capacity is being lost. */
function throttleFromMask(value: number | null): boolean | null {
  if (value === null || !Number.isSafeInteger(value) || value < 0) return null;
  return parseThrottleActive(String(value));
}

function toReading(index: number, series: GpuSeries): GpuReading {
  const value = (field: string) => series.values.get(field) ?? null;
  const used = nonNegative(value(dcgmFields.memoryUsed));
  const free = nonNegative(value(dcgmFields.memoryFree));
  const temperature = value(dcgmFields.temperatureGpu);
  return {
    index,
    uuid: series.uuid?.slice(0, 128) ?? null,
    name: series.name?.slice(0, 128) ?? null,
    utilizationGpu: percent(value(dcgmFields.utilizationGpu)),
    utilizationMemory: percent(value(dcgmFields.utilizationMemory)),
    utilizationEncoder: percent(value(dcgmFields.utilizationEncoder)),
    utilizationDecoder: percent(value(dcgmFields.utilizationDecoder)),
    temperatureGpu: temperature !== null && temperature >= -50 && temperature <= 200 ? temperature : null,
    memoryUsed: used,
    // DCGM publishes no total by default; used + free is what is addressable (FB_RESERVED, which
    // nvidia-smi's memory.total also counts, is left out: the smaller total errs on the safe side).
    memoryTotal: used !== null && free !== null ? used + free : null,
    powerDraw: nonNegative(value(dcgmFields.powerDraw)),
    powerLimit: nonNegative(value(dcgmFields.powerLimit)),
    encoderSessions: null,
    encoderAvgFps: null,
    throttleActive: throttleFromMask(value(dcgmFields.clockEvents) ?? value(dcgmFields.legacyClockEvents)),
  };
}

/** Parses a page (throws `PrometheusTextError` when it is not valid exposition text). */
export function readDcgmPage(text: string): DcgmPage {
  const { samples } = parsePrometheusText(text);
  const gpus = new Map<number, GpuSeries>();
  let migSeries = 0;
  let hostname: string | null = null;
  for (const sample of samples) {
    if (!sample.name.startsWith('DCGM_')) continue;
    const index = gpuIndex(sample);
    if (index === undefined) continue; // NVSwitch, NVLink, CPU entities have no `gpu` index
    hostname ??= label(sample, 'Hostname', 'hostname');
    // A MIG instance's series carries its parent's `gpu` and `UUID`: counting it would mix one slice's
    // load into the whole GPU's.
    if (label(sample, 'GPU_I_ID') !== null) {
      migSeries++;
      continue;
    }
    let series = gpus.get(index);
    if (!series) {
      series = { uuid: null, name: null, values: new Map() };
      gpus.set(index, series);
    }
    series.uuid ??= label(sample, 'UUID', 'uuid');
    series.name ??= label(sample, 'modelName', 'model_name');
    if (!readFields.has(sample.name) || series.values.has(sample.name)) continue;
    if (!Number.isFinite(sample.value) || isDcgmBlank(sample.value)) continue;
    series.values.set(sample.name, sample.value);
  }
  const readings = [...gpus].map(([index, series]) => toReading(index, series));
  return { gpus: byIndex(readings), migSeries, hostname };
}
