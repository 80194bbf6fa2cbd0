/** The nvidia-smi `--query-gpu` fields the probe samples, and the older spellings drivers may want instead. */

/** Field name of the active clock-event bitmask on current drivers (R530 and later). */
export const clockEventField = 'clocks_event_reasons.active';
/** The same bitmask under its pre-R530 name; newer drivers still accept it, older ones know only this. */
export const legacyClockEventField = 'clocks_throttle_reasons.active';

/** Everything the telemetry document needs, `index` first so rows can be told apart cheaply. */
export const baseQueryFields: readonly string[] = Object.freeze([
  'index',
  'uuid',
  'name',
  'utilization.gpu',
  'utilization.memory',
  'utilization.encoder',
  'utilization.decoder',
  'temperature.gpu',
  'memory.used',
  'memory.total',
  'power.draw',
  'power.limit',
  'encoder.stats.sessionCount',
  'encoder.stats.averageFps',
]);

/**
 * The field lists to try, in order: current name of the clock-event mask, then the legacy name, then
 * none at all (throttleActive becomes unknown) so that a driver that knows neither still reports load.
 */
export const queryFieldVariants: readonly (readonly string[])[] = Object.freeze([
  Object.freeze([...baseQueryFields, clockEventField]),
  Object.freeze([...baseQueryFields, legacyClockEventField]),
  baseQueryFields,
]);

/** The `nvidia-smi` arguments for a long-lived sampling process. The header is kept: parsing is by name. */
export function samplingArguments(fields: readonly string[], intervalMs: number): string[] {
  return [`--query-gpu=${fields.join(',')}`, '--format=csv,nounits', '-lms', String(Math.round(intervalMs))];
}
