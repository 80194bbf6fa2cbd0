/**
 * The effective-load rule both stores apply (the Redis scripts' copy: lib/gpus.lua), and the sample
 * reference time it is measured against.
 *
 * On each dimension, effective = max(committed, measured + pending): `committed` is the sum of the
 * costs of the sessions placed on the GPU (VRAM: plus the GPU's idle reserve), `measured` what the last
 * sample showed, `pending` the costs of the sessions placed after that sample was taken (less the
 * settle time), which no sample can show yet. Sessions that ended are not subtracted from `measured`:
 * the next sample shows them gone. An unknown measure counts as committed.
 */

/** One dimension of the effective load; `measured` null when the GPU did not report it. */
export function effectiveOn(committed: number, measured: number | null, pending: number): number {
  return measured === null ? committed : Math.max(committed, measured + pending);
}

/**
 * The time a report's samples describe, on the gateway's clock: the probe's own timestamp `ts`, never
 * later than the report's arrival (a probe clock running ahead) nor more than `maxClockSkewMs` before
 * it (a probe clock running behind, or a report held up on the way: a sample older than that is taken
 * as that old, which only keeps more sessions pending). Without `ts`, the arrival time.
 */
export function sampleReference(ts: number | undefined, arrivedAt: number, maxClockSkewMs: number): number {
  if (ts === undefined || !Number.isFinite(ts)) return arrivedAt;
  return Math.min(arrivedAt, Math.max(ts, arrivedAt - maxClockSkewMs));
}

/** The VRAM reserve an idle sample sets: what it measured, at least the model's floor, at most the card. */
export function idleReserve(floorMiB: number, measuredMiB: number, memoryTotalMiB: number): number {
  return Math.min(Math.max(floorMiB, Math.round(measuredMiB)), Math.max(floorMiB, memoryTotalMiB));
}
