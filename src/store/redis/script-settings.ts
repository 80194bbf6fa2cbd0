/**
 * The per-store settings every script reads: this store's configuration, sent with each call as
 * ARGV[1] (not compiled into the scripts, since two stores with different configurations may share one
 * Redis and so one function library). `settingsArgument` encodes them; lua-emitter.ts generates the
 * scripts' decoding (lib/settings.lua) from the same layout.
 */
import { type LatencyPolicy, latencySchedule } from '../../placement/latency-policy.js';

export interface ScriptSettings {
  /** Render capacity of a GPU under headroom, ppm. */
  gpuCapacity: number;
  /** Encoder capacity of a GPU under headroom, ppm. */
  encoderCapacity: number;
  /** Share of a GPU's VRAM sessions may take (0..1). */
  vramHeadroom: number;
  temperatureMarginCelsius: number;
  requireTelemetry: boolean;
  staleAfterMs: number;
  retainEndedMs: number;
  /** Latency-aware placement (src/placement/latency-policy.ts), sent as its schedule. */
  latencyPolicies: readonly LatencyPolicy[];
  allowUnreportedRegions: boolean;
  /** Highest first. */
  priorityClasses: readonly string[];
}

type NumberSetting = {
  [Name in keyof ScriptSettings]: ScriptSettings[Name] extends number ? Name : never;
}[keyof ScriptSettings];

type FlagSetting = {
  [Name in keyof ScriptSettings]: ScriptSettings[Name] extends boolean ? Name : never;
}[keyof ScriptSettings];

/**
 * One value per line, each followed by '\n', in this order; the list (the priority classes) last, one
 * line per entry. `lua`: the name of the decoded value in the scripts (`F.<lua>`). `latency-schedule`:
 * the latency policies as latencySchedule's steps, `<untilAgeMs>:<maxLatencyMs>` each followed by a
 * space, kept as that text in the scripts (lib/latency.lua reads it only for a session that reported
 * latencies).
 */
export type SettingLayout =
  | { readonly name: NumberSetting; readonly lua: string; readonly kind: 'number' }
  | { readonly name: FlagSetting; readonly lua: string; readonly kind: 'flag' }
  | { readonly name: 'latencyPolicies'; readonly lua: string; readonly kind: 'latency-schedule' }
  | { readonly name: 'priorityClasses'; readonly lua: string; readonly kind: 'list' };

export const scriptSettingsLayout: readonly SettingLayout[] = [
  { name: 'gpuCapacity', lua: 'GPU_CAP', kind: 'number' },
  { name: 'encoderCapacity', lua: 'ENC_CAP', kind: 'number' },
  { name: 'vramHeadroom', lua: 'VRAM_HEADROOM', kind: 'number' },
  { name: 'temperatureMarginCelsius', lua: 'TEMPERATURE_MARGIN', kind: 'number' },
  { name: 'requireTelemetry', lua: 'REQUIRE_TELEMETRY', kind: 'flag' },
  { name: 'staleAfterMs', lua: 'STALE_AFTER_MS', kind: 'number' },
  { name: 'retainEndedMs', lua: 'RETAIN_ENDED_MS', kind: 'number' },
  { name: 'latencyPolicies', lua: 'LATENCY_SCHEDULE', kind: 'latency-schedule' },
  { name: 'allowUnreportedRegions', lua: 'ALLOW_UNREPORTED_REGIONS', kind: 'flag' },
  { name: 'priorityClasses', lua: 'CLASSES', kind: 'list' },
];

/** ARGV[1] of every script call: built once per store. */
export function settingsArgument(settings: ScriptSettings): string {
  let text = '';
  for (const setting of scriptSettingsLayout) {
    if (setting.kind === 'number') text += `${settings[setting.name]}\n`;
    else if (setting.kind === 'flag') text += settings[setting.name] ? '1\n' : '0\n';
    else if (setting.kind === 'latency-schedule') text += `${latencyScheduleText(settings[setting.name])}\n`;
    else for (const value of settings[setting.name]) text += `${value}\n`;
  }
  return text;
}

/** The latency policies as the scripts read them: `<untilAgeMs>:<maxLatencyMs> ` per step, in order. */
export function latencyScheduleText(policies: readonly LatencyPolicy[]): string {
  let text = '';
  // Numbers as JavaScript writes them: the shortest text Lua's tonumber reads back to the same double.
  for (const step of latencySchedule(policies)) text += `${step.untilAgeMs}:${step.maxLatencyMs} `;
  return text;
}
