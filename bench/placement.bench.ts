/**
 * Placement decision benchmark (docs/architecture.md "Performance budgets"): for each strategy at
 * 1,000, 10,000 and 100,000 GPUs, the latency of `PlacementIndex.pick` on a fleet at steady-state
 * occupancy, with every decision committed, an older session released and 2-5 GPUs' telemetry updated
 * between decisions. Only `pick` is timed per decision; the whole-loop rate (pick + commit + release +
 * telemetry) is reported beside it. Writes bench/results/placement.{json,md}.
 *
 * Environment: BENCH_SIZES (e.g. "1000,10000"), BENCH_DECISIONS, BENCH_WARMUP, BENCH_REGION_SHARE.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildFleet } from '../kit/synthetic-fleet.js';
import type { PlacementStrategy } from '../src/placement/strategy.js';

interface PlacementResult {
  strategy: PlacementStrategy;
  gpus: number;
  /** Whole loop: pick + commit + release + telemetry churn, per second of wall time. */
  decisionsPerSecond: number;
  medianMicros: number;
  p99Micros: number;
  p90Micros: number;
  p999Micros: number;
  maxMicros: number;
  meanMicros: number;
  /** 1 / mean pick latency: the rate if the gateway did nothing but decide. */
  pickOnlyDecisionsPerSecond: number;
  decisions: number;
  warmupDecisions: number;
  failedPicks: number;
  telemetryUpdatesPerDecision: number;
  nodes: number;
  eligibleGpus: number;
  liveSessions: number;
  occupancyBefore: number;
  occupancyAfter: number;
  requestShapes: number;
  regionShare: number;
  /** Median cost of one empty `hrtime.bigint()` pair, included in every latency above. */
  timerOverheadMicros: number;
  setupSeconds: number;
}

const sizes = (process.env.BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number);
const strategies: PlacementStrategy[] = ['packed', 'spread'];
const regionShare = Number(process.env.BENCH_REGION_SHARE ?? 0);
const warmup = Number(process.env.BENCH_WARMUP ?? 20_000);
const decisionsFor = (gpus: number) =>
  Number(process.env.BENCH_DECISIONS ?? (gpus >= 100_000 ? 150_000 : 200_000));

function percentile(sorted: Float64Array, p: number): number {
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[at]!;
}

function timerOverheadMicros(): number {
  const samples = new Float64Array(100_000);
  for (let i = 0; i < samples.length; i++) {
    const start = process.hrtime.bigint();
    samples[i] = Number(process.hrtime.bigint() - start);
  }
  samples.sort();
  return percentile(samples, 0.5) / 1000;
}

function run(gpuCount: number, strategy: PlacementStrategy, overhead: number): PlacementResult {
  const setupStart = performance.now();
  const fleet = buildFleet({ gpus: gpuCount, seed: 42, regionShare, occupancy: 0.6 });
  const setupSeconds = (performance.now() - setupStart) / 1000;
  const { index, cluster, shapes, gpus, random } = fleet;
  const occupancyBefore = fleet.occupancy();
  const decisions = decisionsFor(gpuCount);
  const latencies = new Float64Array(decisions);
  let failedPicks = 0;
  let telemetryUpdates = 0;

  const step = (timed: boolean, i: number) => {
    const shape = shapes[Math.floor(random() * shapes.length)]!;
    const request = shape.requests[strategy];
    const start = process.hrtime.bigint();
    const choice = index.pick(request);
    const end = process.hrtime.bigint();
    if (timed) latencies[i] = Number(end - start);
    if (choice) {
      fleet.commit(choice.gpu, choice.cost, shape);
      fleet.releaseLike(shape);
    } else {
      failedPicks++;
    }
    const updates = 2 + Math.floor(random() * 4);
    for (let u = 0; u < updates; u++) fleet.reportTelemetry(gpus[Math.floor(random() * gpus.length)]!);
    telemetryUpdates += updates;
    cluster.sweepStale(fleet.now);
  };

  for (let i = 0; i < warmup; i++) step(false, i);
  failedPicks = 0;
  telemetryUpdates = 0;
  const loopStart = process.hrtime.bigint();
  for (let i = 0; i < decisions; i++) step(true, i);
  const loopSeconds = Number(process.hrtime.bigint() - loopStart) / 1e9;

  let totalNanos = 0;
  for (let i = 0; i < decisions; i++) totalNanos += latencies[i]!;
  latencies.sort();
  const micros = (nanos: number) => Math.round(nanos) / 1000;
  return {
    strategy,
    gpus: gpuCount,
    decisionsPerSecond: Math.round(decisions / loopSeconds),
    medianMicros: micros(percentile(latencies, 0.5)),
    p99Micros: micros(percentile(latencies, 0.99)),
    p90Micros: micros(percentile(latencies, 0.9)),
    p999Micros: micros(percentile(latencies, 0.999)),
    maxMicros: micros(latencies[decisions - 1]!),
    meanMicros: micros(totalNanos / decisions),
    pickOnlyDecisionsPerSecond: Math.round(decisions / (totalNanos / 1e9)),
    decisions,
    warmupDecisions: warmup,
    failedPicks,
    telemetryUpdatesPerDecision: Math.round((telemetryUpdates / decisions) * 100) / 100,
    nodes: fleet.nodes.length,
    eligibleGpus: index.size,
    liveSessions: fleet.liveSessions,
    occupancyBefore: Math.round(occupancyBefore * 1000) / 1000,
    occupancyAfter: Math.round(fleet.occupancy() * 1000) / 1000,
    requestShapes: shapes.length,
    regionShare,
    timerOverheadMicros: overhead,
    setupSeconds: Math.round(setupSeconds * 100) / 100,
  };
}

function table(results: readonly PlacementResult[]): string {
  const header = [
    'strategy',
    'GPUs',
    'decisions/s (loop)',
    'pick-only/s',
    'median µs',
    'p99 µs',
    'p99.9 µs',
    'failed',
    'occupancy',
  ];
  const rows = results.map((r) => [
    r.strategy,
    r.gpus.toLocaleString('en-US'),
    r.decisionsPerSecond.toLocaleString('en-US'),
    r.pickOnlyDecisionsPerSecond.toLocaleString('en-US'),
    r.medianMicros.toFixed(2),
    r.p99Micros.toFixed(2),
    r.p999Micros.toFixed(2),
    String(r.failedPicks),
    `${r.occupancyBefore.toFixed(2)} -> ${r.occupancyAfter.toFixed(2)}`,
  ]);
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function shell(command: string, fallback: string): string {
  try {
    return execSync(command, { encoding: 'utf8' }).trim();
  } catch {
    return fallback;
  }
}

const overhead = timerOverheadMicros();
const results: PlacementResult[] = [];
const started = performance.now();
for (const gpus of sizes) {
  for (const strategy of strategies) {
    const result = run(gpus, strategy, overhead);
    results.push(result);
    console.log(
      `${strategy.padEnd(6)} ${String(gpus).padStart(6)} GPUs: median ${result.medianMicros.toFixed(2)} µs, ` +
        `p99 ${result.p99Micros.toFixed(2)} µs, ${result.decisionsPerSecond.toLocaleString('en-US')} decisions/s ` +
        `(setup ${result.setupSeconds}s)`,
    );
  }
}
const totalSeconds = (performance.now() - started) / 1000;

const budgetLines: string[] = [];
let allMet = true;
for (const strategy of strategies) {
  const at = (gpus: number) => results.find((r) => r.strategy === strategy && r.gpus === gpus);
  const at10k = at(10_000);
  if (at10k) {
    const ok = at10k.medianMicros < 5;
    allMet &&= ok;
    budgetLines.push(
      `- ${strategy}: median at 10,000 GPUs = ${at10k.medianMicros.toFixed(2)} µs (budget < 5 µs): ${ok ? 'MET' : 'NOT MET'}`,
    );
  }
  const small = at(1_000);
  const large = at(100_000);
  if (small && large) {
    const ratio = large.medianMicros / small.medianMicros;
    const ok = ratio <= 2;
    allMet &&= ok;
    budgetLines.push(
      `- ${strategy}: median(100k) / median(1k) = ${large.medianMicros.toFixed(2)} / ${small.medianMicros.toFixed(2)} = ${ratio.toFixed(2)} (budget <= 2): ${ok ? 'MET' : 'NOT MET'}`,
    );
  }
}

const resultsDir = path.join(import.meta.dirname, 'results');
mkdirSync(resultsDir, { recursive: true });
writeFileSync(path.join(resultsDir, 'placement.json'), `${JSON.stringify(results, null, 2)}\n`);

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const markdown = `# Placement decision benchmark

- Date: ${shell('date -u', new Date().toUTCString())}
- Machine: ${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}
- Load average at the end: ${os
  .loadavg()
  .map((load) => load.toFixed(2))
  .join(' / ')} (other processes share this machine; rerun when comparing)
- Node ${process.version}; \`npm run bench:placement\` (tsx bench/placement.bench.ts); total ${totalSeconds.toFixed(1)} s

## Method

A fleet built by \`kit/synthetic-fleet.ts\` from the real catalog (config/games.yaml, config/gpus.yaml): nodes
of L4 x1, L40S x1, A10G x1, T4 x1, RTX 4080 SUPER x2, Tesla M60 x2 and GRID K2 x2 (weighted
4:2:3:3:1:1:1) over ${4} regions, a \`FleetState\` wired to a \`PlacementIndex\` with the default headroom
(0.9 / 0.9 / 0.95), \`requireTelemetry: true\`, each node made ready by one telemetry report, and a
background load committed per GPU (each GPU towards its own target, mean ~0.6 of its busiest dimension).
Requests come from a pool of ${results[0]?.requestShapes ?? 0} precomputed shapes (random title,
allowed resolution and frame rate, \`sessionCost\` for every model with NVENC); share asking for a region:
${regionShare}. Each decision: \`index.pick\` (timed alone with \`process.hrtime.bigint()\`), commit the
choice, release a random live session of the same shape (the session mix stays stationary, where the
sessions sit evolves under the strategy), 2-5 telemetry reports for random GPUs (committed load +-4 %
noise, VRAM baseline, temperature), and \`sweepStale\` (the clock is frozen, so nothing goes stale).
Occupancy = mean over GPUs of the committed share of each GPU's busiest dimension (gpu, encoder or
VRAM, of the capacity under headroom); it moves while the session count stays fixed because packed
concentrates and spread scatters the same sessions. \`failed\` = decisions where no GPU fits (a
gateway would queue them); spread fragments large GPUs, so heavy titles fail more often under it. Warm-up ${warmup}
decisions per configuration, then ${decisionsFor(1_000).toLocaleString('en-US')} timed decisions
(${decisionsFor(100_000).toLocaleString('en-US')} at 100,000 GPUs).

- **decisions/s (loop)**: the whole loop (pick + commit + release + telemetry churn) per wall second.
- **pick-only/s**: decisions / total time inside \`pick\` (1 / mean pick latency).
- **median / p99 / p99.9**: per-decision latency of \`pick\` alone, including the timer's own cost
  (median ${overhead.toFixed(3)} µs for an empty \`hrtime.bigint()\` pair on this machine).

## Results

${table(results)}

## Budgets (docs/architecture.md "Performance budgets")

${budgetLines.join('\n')}

Verdict: ${allMet ? 'all placement budgets met' : 'placement budgets NOT all met'}.
`;
writeFileSync(path.join(resultsDir, 'placement.md'), markdown);

console.log(`\n${table(results)}\n\n${budgetLines.join('\n')}\n(total ${totalSeconds.toFixed(1)} s)`);
