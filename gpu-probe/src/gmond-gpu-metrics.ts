/**
 * The metrics of Ganglia's NVIDIA GPU module (gmond_python_modules `gpu/nvidia/python_modules/nvidia.py`,
 * github.com/ganglia/gmond_python_modules) -> the probe's GpuReading, one per GPU of a gmond HOST.
 *
 * The module's names and units, as it declares them (`build_descriptor(name, ..., units, ...)`):
 * - `gpu_num` (GPUs), `gpuN_type` (the model name), `gpuN_uuid` (strings)
 * - `gpuN_util`, `gpuN_mem_util`, `gpuN_encoder_util`, `gpuN_decoder_util` (`%`), `gpuN_temp` (`C`)
 * - memory in use: `gpuN_fb_memory` (`MB` = NVML bytes / 1048576, i.e. MiB) since 2014; before it
 *   `gpuN_mem_used` (`KB` = bytes / 1024). `gpuN_mem_total`: `MB` (MiB) now, `KB` in the old module.
 * - power: `gpuN_power_usage_report` (`watts` = NVML milliwatts / 1000) now; the old `gpuN_power_usage`
 *   is labelled `watts` but carries NVML's raw milliwatts. `gpuN_power_man_limit`: `Watts` now, a raw
 *   milliwatt string without units in the old module.
 * Units are read from each metric's UNITS, so both module generations (and gmetric injections) work.
 * The module has no encoder-session, encoder-fps or clock-event metric: those stay null (unknown).
 *
 * Freshness: a metric is used only while TN <= 2 x TMAX (and TN <= DMAX when DMAX > 0). gmond re-sends
 * an unchanged value only at the first collection after `time_threshold` (= TMAX), so a live metric can
 * be up to one `collect_every` past TMAX; twice TMAX never flags a live one. Older values are unknown.
 */

import { maxGpuIndex } from '../../src/wire/index.js';
import type { GmondHost, GmondMetric } from './gmond-xml.js';
import { type GpuReading, parseSmiNumber, parseSmiText } from './gpu-reading.js';

/** Per-GPU metrics that change with load: a host without one fresh among them has nothing to report. */
const liveMetricSuffixes = [
  'util',
  'mem_util',
  'encoder_util',
  'decoder_util',
  'temp',
  'fb_memory',
  'mem_used',
  'power_usage_report',
  'power_usage',
] as const;

const perGpuMetric = /^gpu(\d+)_([a-z_]+)$/;

/** Above this, a "watts" value of the old module is NVML milliwatts (no GPU draws 2 kW; none idles under 2 W). */
const milliwattsThreshold = 2000;

export function isFresh(metric: GmondMetric): boolean {
  const age = metric.secondsSinceReport;
  if (age === null) return false;
  const { maxSecondsBetweenReports: tmax, lifetimeSeconds: dmax } = metric;
  if (tmax !== null && tmax > 0 && age > 2 * tmax) return false;
  if (dmax !== null && dmax > 0 && age > dmax) return false;
  return true;
}

export interface GmondGpuReadings {
  /** One reading per GPU the host's metrics name, by ascending index. */
  gpus: GpuReading[];
  /** Whether any load metric of any GPU is fresh: if not, there is nothing to report (stale). */
  fresh: boolean;
}

/** Bytes per unit of a memory metric; Ganglia's `KB`/`MB` are binary (the module divides by 1024). */
const bytesPerUnit: Record<string, number> = {
  b: 1,
  bytes: 1,
  kb: 1024,
  kib: 1024,
  kilobytes: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  megabytes: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  gigabytes: 1024 ** 3,
};

function mebibytes(metric: GmondMetric | undefined): number | null {
  const value = number(metric);
  if (value === null) return null;
  const perUnit = bytesPerUnit[metric!.units.trim().toLowerCase()];
  return perUnit === undefined ? null : Math.round((value * perUnit) / 1024 ** 2);
}

function number(metric: GmondMetric | undefined): number | null {
  if (!metric || !isFresh(metric)) return null;
  return parseSmiNumber(metric.value);
}

function text(metric: GmondMetric | undefined): string | null {
  if (!metric || !isFresh(metric)) return null;
  return parseSmiText(metric.value)?.slice(0, 128) ?? null;
}

function percent(metric: GmondMetric | undefined): number | null {
  const value = number(metric);
  if (value === null || !['%', 'percent', ''].includes(metric!.units.trim().toLowerCase())) return null;
  return Math.min(100, Math.max(0, value));
}

function celsius(metric: GmondMetric | undefined): number | null {
  const value = number(metric);
  if (value === null || !['c', 'celsius', 'celcius', '°c', ''].includes(metric!.units.trim().toLowerCase()))
    return null;
  return value >= -50 && value <= 200 ? value : null;
}

/**
 * Watts from a power metric: `mW`/`milliwatts` divided by 1000; `W`/`watts` as is, except a legacy
 * metric (old module: raw NVML milliwatts labelled `watts`, or no units at all) above 2000 "watts".
 */
function watts(metric: GmondMetric | undefined, legacy: boolean): number | null {
  const value = number(metric);
  if (value === null || value < 0) return null;
  const units = metric!.units.trim().toLowerCase();
  if (units === 'mw' || units === 'milliwatts') return value / 1000;
  if (units === 'w' || units === 'watt' || units === 'watts' || (legacy && units === '')) {
    return legacy && value > milliwattsThreshold ? value / 1000 : value;
  }
  return null;
}

function gpuIndexes(host: GmondHost): number[] {
  const indexes = new Set<number>();
  for (const name of host.metrics.keys()) {
    const match = perGpuMetric.exec(name);
    if (match && Number(match[1]) <= maxGpuIndex) indexes.add(Number(match[1]));
  }
  const count = number(host.metrics.get('gpu_num'));
  if (count !== null && Number.isInteger(count))
    for (let index = 0; index < Math.min(count, maxGpuIndex + 1); index++) indexes.add(index);
  return [...indexes].sort((left, right) => left - right);
}

/** The GPU readings of one gmond HOST (empty when the host does not run the GPU module). */
export function readingsFromGmondHost(host: GmondHost): GmondGpuReadings {
  let fresh = false;
  const gpus = gpuIndexes(host).map((index): GpuReading => {
    const metric = (suffix: string) => host.metrics.get(`gpu${index}_${suffix}`);
    if (liveMetricSuffixes.some((suffix) => number(metric(suffix)) !== null)) fresh = true;
    const powerUsage = metric('power_usage_report') ?? metric('power_usage');
    const powerLimit = metric('power_man_limit');
    return {
      index,
      uuid: text(metric('uuid')),
      name: text(metric('type')),
      utilizationGpu: percent(metric('util')),
      utilizationMemory: percent(metric('mem_util')),
      utilizationEncoder: percent(metric('encoder_util')),
      utilizationDecoder: percent(metric('decoder_util')),
      temperatureGpu: celsius(metric('temp')),
      memoryUsed: mebibytes(metric('fb_memory')) ?? mebibytes(metric('mem_used')),
      memoryTotal: mebibytes(metric('mem_total')),
      powerDraw: watts(powerUsage, powerUsage?.name.endsWith('_power_usage') ?? false),
      powerLimit: watts(powerLimit, powerLimit?.units.trim() === ''),
      encoderSessions: null,
      encoderAvgFps: null,
      throttleActive: null,
    };
  });
  return { gpus, fresh };
}

/**
 * The HOST that is this node: NAME or IP equal to `wanted` (case-insensitive), else the one whose
 * short name (before the first dot) matches; a dump of a single host is that host. Undefined when
 * none, or more than one, fits.
 */
export function pickHost(hosts: readonly GmondHost[], wanted: string): GmondHost | undefined {
  if (hosts.length === 1) return hosts[0];
  const lower = wanted.toLowerCase();
  const exact = hosts.filter((host) => host.name.toLowerCase() === lower || host.ip === wanted);
  if (exact.length === 1) return exact[0];
  if (exact.length > 1) return undefined;
  const short = (name: string) => name.toLowerCase().split('.')[0];
  const byShortName = hosts.filter((host) => short(host.name) === short(wanted));
  return byShortName.length === 1 ? byShortName[0] : undefined;
}
