/**
 * The placement policies compared on one trace, as VCA configurations: the VCA itself (packed or
 * spread, with telemetry and, where the build has it, learned costs), best fit on catalog prices
 * without telemetry, and best fit on the true prices (an oracle, also without telemetry).
 */
import { loadConfig } from '../../src/config/load-config.js';
import { ConfigSchema, type VcaConfig } from '../../src/config/schema.js';

export type PolicyName = 'packed' | 'spread' | 'catalog-only' | 'oracle';

export const policyNames: readonly PolicyName[] = ['packed', 'spread', 'catalog-only', 'oracle'];

export interface Policy {
  name: PolicyName;
  description: string;
  strategy: 'packed' | 'spread';
  /** Probes report; placement requires a first report. */
  telemetry: boolean;
  /** Prices from the true catalog (the oracle) instead of config/games.yaml. */
  trueCatalog: boolean;
}

export const policies: Readonly<Record<PolicyName, Policy>> = {
  packed: {
    name: 'packed',
    description: 'VCA, packed, telemetry (and learned costs when the build has them)',
    strategy: 'packed',
    telemetry: true,
    trueCatalog: false,
  },
  spread: {
    name: 'spread',
    description: 'VCA, spread, telemetry (and learned costs when the build has them)',
    strategy: 'spread',
    telemetry: true,
    trueCatalog: false,
  },
  'catalog-only': {
    name: 'catalog-only',
    description: 'best fit (packed) on catalog costs, no telemetry',
    strategy: 'packed',
    telemetry: false,
    trueCatalog: false,
  },
  oracle: {
    name: 'oracle',
    description: 'best fit (packed) on the true costs, no telemetry',
    strategy: 'packed',
    telemetry: false,
    trueCatalog: true,
  },
};

/** Telemetry period of the simulated probes, seconds. */
export const reportIntervalSeconds = 0.5;

/** Whether this build's configuration has learned costs (`costs.learning`). */
export function buildHasLearnedCosts(): boolean {
  return 'costs' in ConfigSchema.properties;
}

/**
 * The configuration a policy runs with: config/default.yaml and the schema's defaults, the policy's
 * own settings, then `extra` (dotted paths from `--set`, for experiments) over the VCA policies.
 */
export function policyConfig(
  policy: Policy,
  extra: Readonly<Record<string, unknown>> = {},
): Readonly<VcaConfig> {
  const overrides: Record<string, unknown> = {
    placement: { strategy: policy.strategy, requireTelemetry: policy.telemetry },
    telemetry: { reportIntervalSeconds },
    log: { level: 'silent' },
  };
  if (buildHasLearnedCosts())
    overrides.costs = { learning: { enabled: policy.telemetry && !policy.trueCatalog } };
  if (policy.telemetry)
    for (const [key, value] of Object.entries(extra)) setPath(overrides, key.split('.'), value);
  return loadConfig({ env: {}, overrides });
}

function setPath(target: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let cursor = target;
  for (const key of keys.slice(0, -1)) {
    const next = cursor[key];
    cursor[key] = typeof next === 'object' && next !== null ? next : {};
    cursor = cursor[key] as Record<string, unknown>;
  }
  cursor[keys[keys.length - 1]!] = value;
}
