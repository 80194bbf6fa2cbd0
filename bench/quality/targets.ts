/**
 * The targets of the placement-quality benchmark, judged on one trace: the VCA's true overload at most
 * 5 % of catalog-only best fit's, its admissions at least 98 % of the oracle's, and its learned costs
 * within 10 % of the truth once a title has had 200 sessions.
 */
import type { PolicyName } from './policies.js';
import type { LearnedCostError, PolicyResult } from './simulation.js';

export const targetLimits = {
  /** VCA overload GPU-seconds / catalog-only's, at most. */
  overloadRatio: 0.05,
  /** VCA admitted / oracle admitted, at least. */
  admittedRatio: 0.98,
  /** |learned - true| / true, at most. */
  learnedError: 0.1,
} as const;

export interface TargetResult {
  target: string;
  policy: string;
  value: number | null;
  limit: number;
  pass: boolean | null;
  detail: string;
}

/** Entries that decide placement: learned with enough confidence to be in force. */
export function judgedEntries(entries: readonly LearnedCostError[]): LearnedCostError[] {
  return entries.filter((entry) => entry.active && entry.error !== null);
}

export function evaluateTargets(results: Readonly<Record<PolicyName, PolicyResult>>): TargetResult[] {
  const targets: TargetResult[] = [];
  const catalogOnly = results['catalog-only'];
  const oracle = results.oracle;
  for (const policy of ['packed', 'spread'] as const) {
    const result = results[policy];
    const overloadRatio =
      catalogOnly.overloadGpuSeconds > 0
        ? result.overloadGpuSeconds / catalogOnly.overloadGpuSeconds
        : result.overloadGpuSeconds === 0
          ? 0
          : Infinity;
    targets.push({
      target: 'overload <= 5 % of catalog-only',
      policy,
      value: overloadRatio,
      limit: targetLimits.overloadRatio,
      pass: overloadRatio <= targetLimits.overloadRatio,
      detail: `${result.overloadGpuSeconds.toFixed(1)} / ${catalogOnly.overloadGpuSeconds.toFixed(1)} GPU-s`,
    });
    const admittedRatio = oracle.admitted > 0 ? result.admitted / oracle.admitted : 1;
    targets.push({
      target: 'admitted >= 98 % of oracle',
      policy,
      value: admittedRatio,
      limit: targetLimits.admittedRatio,
      pass: admittedRatio >= targetLimits.admittedRatio,
      detail: `${result.admitted} / ${oracle.admitted} sessions`,
    });
    const checks = result.learnedAfterSessions;
    if (!checks) {
      targets.push({
        target: 'learned within 10 % after 200 sessions',
        policy,
        value: null,
        limit: targetLimits.learnedError,
        pass: null,
        detail: 'not measured: this build has no learned costs (vca.costs)',
      });
      continue;
    }
    const judged = Object.values(checks).flatMap((check) => judgedEntries(check.entries));
    const titles = Object.keys(checks);
    const worst = judged.reduce<LearnedCostError | null>(
      (max, entry) => (max === null || entry.error! > max.error! ? entry : max),
      null,
    );
    targets.push({
      target: 'learned within 10 % after 200 sessions',
      policy,
      value: worst?.error ?? null,
      limit: targetLimits.learnedError,
      pass: titles.length === 0 || judged.length === 0 ? null : worst!.error! <= targetLimits.learnedError,
      detail:
        titles.length === 0
          ? 'no title reached 200 sessions'
          : `${titles.length} title(s) reached 200 sessions (${titles.join(', ')}); ${judged.length} learned entries in force` +
            (worst
              ? `, worst ${worst.game} on ${worst.model} ${worst.dimension}: learned x${worst.learnedRatio?.toFixed(3)} vs true x${worst.trueRatio.toFixed(3)}`
              : ''),
    });
  }
  return targets;
}
