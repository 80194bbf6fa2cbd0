/**
 * Latency-aware placement: which regions a session may be placed in, given the round-trip times its
 * gamer reported per region, its age and the configured latency policies. Pure: both stores call it
 * (the embedded store directly; the Redis store stores `orderedLatencies` and the `latencySchedule`
 * it sends as a setting, and lib/latency.lua applies the same cap to that order).
 *
 * Policy i is in force while the session's age is below the sum of `forSeconds` of policies 0..i. While
 * one is in force, the allowed regions are the reported ones whose latency is within its cap
 * (latency <= maxLatencyMs, so a cap of 50 admits exactly 50 ms). After the last policy (or with no
 * policies at all) every reported region is allowed, and regions the gamer did not report follow them
 * only with `allowUnreportedRegions` (never while a cap is in force: an unreported latency is not
 * known to be within it). Allowed regions are tried lowest latency first, ties by region name (code
 * unit order, as Lua compares ASCII names). A session that reported no latency has no plan: every
 * region, as without this feature.
 */

export interface LatencyPolicy {
  /** Highest round-trip time a region may have, ms (inclusive). */
  readonly maxLatencyMs: number;
  /** How long this policy stays in force after the one before it ends, seconds. */
  readonly forSeconds: number;
}

/** What the stores need from the configuration for latency-aware placement. */
export interface LatencyRules {
  readonly latencyPolicies: readonly LatencyPolicy[];
  readonly allowUnreportedRegions: boolean;
}

/** One step of the schedule: the cap in force while a session's age is below `untilAgeMs`. */
export interface LatencyStep {
  readonly untilAgeMs: number;
  readonly maxLatencyMs: number;
}

/** A reported region and its round-trip time, ms. */
export type RegionLatency = readonly [region: string, latencyMs: number];

export interface LatencyPlan {
  /** The reported regions allowed now, in the order they are tried. */
  readonly regions: readonly string[];
  /** True when any region may follow them (no cap in force, and unreported regions are allowed). */
  readonly otherRegions: boolean;
  /** The cap in force, ms; null when none is. */
  readonly maxLatencyMs: number | null;
  /** When the next policy (or none) takes over, ms; null when no cap is in force. */
  readonly relaxesAt: number | null;
}

/** The policies as age boundaries, each the running sum of `forSeconds` (in ms) up to it. */
export function latencySchedule(policies: readonly LatencyPolicy[]): LatencyStep[] {
  const steps: LatencyStep[] = [];
  let seconds = 0;
  for (const policy of policies) {
    seconds += policy.forSeconds;
    steps.push({ untilAgeMs: seconds * 1000, maxLatencyMs: policy.maxLatencyMs });
  }
  return steps;
}

/** The step in force at `ageMs`, or undefined after the last one. */
export function latencyStepAt(steps: readonly LatencyStep[], ageMs: number): LatencyStep | undefined {
  for (const step of steps) if (ageMs < step.untilAgeMs) return step;
  return undefined;
}

/**
 * The reported regions in the order they are tried: lowest latency first, ties by region name. A value
 * that is not a finite number >= 0 is no report (the gateway refuses such requests before).
 */
export function orderedLatencies(latencies: Readonly<Record<string, number>>): RegionLatency[] {
  const entries: RegionLatency[] = [];
  for (const region of Object.keys(latencies)) {
    const latencyMs = latencies[region]!;
    if (Number.isFinite(latencyMs) && latencyMs >= 0) entries.push([region, latencyMs]);
  }
  return entries.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * The plan of a session at `now` (its age: now - createdAt); null when it reported no latency, so
 * placement is as without latencies.
 */
export function latencyPlan(
  session: { readonly latencies?: Readonly<Record<string, number>> | undefined; readonly createdAt: number },
  now: number,
  rules: LatencyRules,
): LatencyPlan | null {
  if (session.latencies === undefined) return null;
  const ordered = orderedLatencies(session.latencies);
  if (ordered.length === 0) return null;
  const step = latencyStepAt(latencySchedule(rules.latencyPolicies), now - session.createdAt);
  const regions: string[] = [];
  for (const [region, latencyMs] of ordered) {
    // Ordered by latency: the first one over the cap ends the allowed prefix.
    if (step !== undefined && latencyMs > step.maxLatencyMs) break;
    regions.push(region);
  }
  return {
    regions,
    otherRegions: step === undefined && rules.allowUnreportedRegions,
    maxLatencyMs: step?.maxLatencyMs ?? null,
    relaxesAt: step === undefined ? null : session.createdAt + step.untilAgeMs,
  };
}
