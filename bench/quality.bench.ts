/**
 * Placement-quality benchmark (`npm run bench:quality`): the real placement code driven by a trace
 * simulation in virtual time (bench/quality/). For each seed and offered load, one trace — a mixed
 * fleet of 24 nodes / 29 GPUs, titles whose true cost is 0.72x-1.30x the catalog's, Poisson gamers up
 * to the load, probes reporting every 0.5 s with lag and noise — is played against four policies:
 * the VCA packed and spread (telemetry, learned costs where the build has them), best fit on catalog
 * costs without telemetry, and best fit knowing the true costs. Writes bench/results/quality.{json,md}.
 *
 * Options (argv or environment): --seeds / QUALITY_SEEDS (default 20261129,7), --duration /
 * QUALITY_DURATION_SECONDS (3600), --loads / QUALITY_LOADS (peak offered loads, default 1; `--loads 1,0.5` adds the half-load runs),
 * --out / QUALITY_OUT (results folder, default bench/results), --set key.path=value (repeatable: a
 * configuration override of the VCA policies, e.g. --set telemetry.settleSeconds=3).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalog } from '../src/config/load-catalog.js';
import { loadConfig } from '../src/config/load-config.js';
import { buildHasLearnedCosts, type PolicyName, policies, policyNames } from './quality/policies.js';
import { type QualityRun, renderMarkdown, summaryTable } from './quality/report.js';
import { defaultSimulationOptions, type PolicyResult, simulatePolicy } from './quality/simulation.js';
import { evaluateTargets } from './quality/targets.js';
import { buildTrace, defaultTraceOptions } from './quality/trace.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    duration: { type: 'string' },
    loads: { type: 'string' },
    out: { type: 'string' },
    set: { type: 'string', multiple: true },
  },
});

const numbers = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map(Number);
const seeds = numbers(values.seeds ?? process.env.QUALITY_SEEDS ?? '20261129,7');
const loads = numbers(values.loads ?? process.env.QUALITY_LOADS ?? '1');
const durationSeconds = Number(values.duration ?? process.env.QUALITY_DURATION_SECONDS ?? 3600);
const resultsDir = path.resolve(
  values.out ?? process.env.QUALITY_OUT ?? path.join(import.meta.dirname, 'results'),
);
for (const value of [...seeds, ...loads, durationSeconds]) {
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`bad option value ${value}: seeds, loads and duration are positive numbers`);
}

// --set telemetry.settleSeconds=3: configuration overrides of the VCA policies (values read as JSON).
const configOverrides: Record<string, unknown> = {};
for (const assignment of values.set ?? []) {
  const at = assignment.indexOf('=');
  if (at <= 0) throw new Error(`--set ${assignment}: expected key.path=value`);
  const raw = assignment.slice(at + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // Not JSON: the text itself.
  }
  configOverrides[assignment.slice(0, at)] = value;
}

const started = performance.now();
const catalog = loadCatalog(loadConfig({ env: {} }));
const runs: QualityRun[] = [];
for (const peakLoad of loads) {
  for (const seed of seeds) {
    const trace = buildTrace(catalog, { ...defaultTraceOptions, seed, durationSeconds, peakLoad });
    const results = {} as Record<PolicyName, PolicyResult>;
    for (const name of policyNames) {
      results[name] = await simulatePolicy(trace, policies[name], {
        ...defaultSimulationOptions,
        noiseSeed: seed ^ 0x5bd1e995,
        configOverrides,
      });
      const result = results[name];
      console.log(
        `load ${peakLoad} seed ${seed} ${name.padEnd(12)} admitted ${result.admittedAtOnce} + ${result.admittedAfterQueue}, ` +
          `timed out ${result.timedOut}, overload ${result.overloadGpuSeconds.toFixed(1)} GPU-s, ` +
          `degraded ${(result.degradedSessionShare * 100).toFixed(2)} % (${result.wallSeconds.toFixed(1)} s)`,
      );
    }
    runs.push({
      seed,
      peakLoad,
      arrivals: trace.arrivals.length,
      peakArrivalsPerSecond: trace.peakArrivalsPerSecond,
      peakDemandShare: trace.peakDemandShare,
      fleet: trace.nodes.map((node) => ({ node: node.id, model: node.model, gpus: node.gpuCount })),
      truth: {
        titles: Object.fromEntries(
          [...trace.titles.values()].map((title) => [
            title.game,
            { render: title.renderFactor, vram: title.vramFactor },
          ]),
        ),
        encoderByModel: Object.fromEntries(trace.encoderFactors),
        baselineVramMiB: Object.fromEntries(trace.gpus.map((gpu) => [gpu.key, gpu.baselineVramMiB])),
      },
      policies: results,
      targets: evaluateTargets(results),
    });
  }
}
const totalSeconds = (performance.now() - started) / 1000;
const usage = process.cpuUsage();
const cpuSeconds = (usage.user + usage.system) / 1e6;

const environment = {
  date: new Date().toISOString(),
  machine: os.cpus()[0]?.model ?? 'unknown CPU',
  cores: os.cpus().length,
  node: process.version,
  totalSeconds,
  cpuSeconds,
  learnedCosts: buildHasLearnedCosts(),
  trace: { ...defaultTraceOptions, durationSeconds, fleet: undefined },
  simulation: defaultSimulationOptions,
  seeds,
  loads,
  configOverrides,
};
mkdirSync(resultsDir, { recursive: true });
writeFileSync(
  path.join(resultsDir, 'quality.json'),
  `${JSON.stringify({ ...environment, runs }, null, 2)}\n`,
);
writeFileSync(path.join(resultsDir, 'quality.md'), renderMarkdown(environment, runs));
console.log(
  `\n${summaryTable(runs)}\n(total ${totalSeconds.toFixed(1)} s, ${cpuSeconds.toFixed(1)} s of CPU; ${path.join(resultsDir, 'quality.{json,md}')})`,
);
