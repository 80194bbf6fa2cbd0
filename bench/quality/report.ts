/** The placement-quality benchmark's report: the tables of bench/results/quality.md and the console. */
import { type PolicyName, policies, policyNames } from './policies.js';
import type { LearnedCostError, PolicyResult } from './simulation.js';
import { judgedEntries, type TargetResult, targetLimits } from './targets.js';

export interface QualityRun {
  seed: number;
  peakLoad: number;
  arrivals: number;
  peakArrivalsPerSecond: number;
  peakDemandShare: { render: number; encoder: number; vram: number };
  fleet: Array<{ node: string; model: string; gpus: number }>;
  truth: {
    titles: Record<string, { render: number; vram: number }>;
    encoderByModel: Record<string, number>;
    baselineVramMiB: Record<string, number>;
  };
  policies: Record<PolicyName, PolicyResult>;
  targets: TargetResult[];
}

export interface QualityEnvironment {
  date: string;
  machine: string;
  cores: number;
  node: string;
  totalSeconds: number;
  cpuSeconds: number;
  learnedCosts: boolean;
  trace: { durationSeconds: number; medianSessionMinutes: number; durationSigma: number };
  simulation: {
    lagRangeMs: readonly [number, number];
    noisePoints: number;
    learnedCheckAfterSessions: number;
  };
  seeds: number[];
  loads: number[];
}

const percent = (share: number, digits = 1) => `${(share * 100).toFixed(digits)} %`;
const fixed = (value: number, digits = 1) => value.toFixed(digits);

/** A Markdown table; `right`: indexes of the right-aligned (numeric) columns. */
function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly number[],
): string {
  const align = header.map((_, i) => (right.includes(i) ? '---:' : '---'));
  return [header, align, ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}

/** The side-by-side table of every run (console and README). */
export function summaryTable(runs: readonly QualityRun[]): string {
  const rows: string[][] = [];
  for (const run of runs) {
    for (const name of policyNames) {
      const result = run.policies[name];
      rows.push([
        fixed(run.peakLoad, 2),
        String(run.seed),
        name,
        `${result.admittedAtOnce} + ${result.admittedAfterQueue}`,
        String(result.timedOut),
        `${fixed(result.queueWaitMeanSeconds)} / ${fixed(result.queueWaitP95Seconds)}`,
        fixed(result.overloadGpuSeconds),
        percent(result.degradedSessionShare, 2),
        fixed(result.meanOccupiedGpus, 2),
      ]);
    }
  }
  return table(
    [
      'load',
      'seed',
      'placement',
      'admitted at once + after queue',
      'timed out',
      'queue wait mean / p95 s',
      'overload GPU-s',
      'degraded session-s',
      'GPUs busy (mean)',
    ],
    rows,
    [3, 4, 5, 6, 7, 8],
  );
}

export function targetsTable(runs: readonly QualityRun[]): string {
  const rows: string[][] = [];
  for (const run of runs) {
    for (const target of run.targets) {
      rows.push([
        fixed(run.peakLoad, 2),
        String(run.seed),
        target.target,
        target.policy,
        target.value === null
          ? '—'
          : target.target.startsWith('learned')
            ? percent(target.value)
            : fixed(target.value, 3),
        target.pass === null ? 'not measured' : target.pass ? 'PASS' : 'FAIL',
        target.detail,
      ]);
    }
  }
  return table(['load', 'seed', 'target', 'policy', 'value', 'result', 'detail'], rows, [4]);
}

function aloneFormats(result: PolicyResult): string {
  const top = Object.entries(result.overloadAloneByFormat).slice(0, 4);
  return top.length === 0
    ? ''
    : ` (${top.map(([format, seconds]) => `${format} ${fixed(seconds)}`).join(', ')})`;
}

function diagnosis(run: QualityRun): string {
  const lines: string[] = [`### Load ${run.peakLoad}, seed ${run.seed}: where the overload is`, ''];
  for (const name of policyNames) {
    const result = run.policies[name];
    if (result.overloadGpuSeconds === 0) {
      lines.push(`- **${name}**: no GPU overloaded.`);
      continue;
    }
    const byModel = Object.entries(result.overloadGpuSecondsByModel)
      .filter(([, seconds]) => seconds > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([model, seconds]) => `${model} ${fixed(seconds)}`)
      .join(', ');
    const dims = result.overloadGpuSecondsByDimension;
    const worst = result.worstGpus
      .slice(0, 4)
      .map(
        (gpu) =>
          `${gpu.gpu} ${fixed(gpu.overloadSeconds)} s (${Object.entries(gpu.dimensions)
            .filter(([, seconds]) => seconds > 0)
            .map(([dimension]) => dimension)
            .join('+')})`,
      )
      .join('; ');
    const games = Object.entries(result.degradedShareByGame)
      .filter(([, share]) => share > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([game, share]) => `${game} ${percent(share)}`)
      .join(', ');
    const timeline = result.overloadTimeline.map((seconds) => fixed(seconds, 0)).join(' / ');
    lines.push(
      `- **${name}**: ${fixed(result.overloadGpuSeconds)} GPU-s — by model: ${byModel}; by dimension: render ${fixed(dims.render)}, encoder ${fixed(dims.encoder)}, VRAM ${fixed(dims.vram)}; ` +
        `with one session alone on the GPU (a format that truly does not fit the model): ${fixed(result.overloadGpuSecondsAlone)}${aloneFormats(result)}. ` +
        `Longest: ${worst}. Titles most degraded (share of their session-seconds): ${games}. ` +
        `Per 5-minute window: ${timeline}.`,
    );
  }
  return lines.join('\n');
}

function learnedSection(runs: readonly QualityRun[]): string {
  const lines: string[] = [];
  for (const run of runs) {
    for (const name of ['packed', 'spread'] as const) {
      const result = run.policies[name];
      if (!result.learnedAfterSessions || !result.learnedAtEnd) continue;
      lines.push(`### Load ${run.peakLoad}, seed ${run.seed}, ${name}`, '');
      const checks = Object.entries(result.learnedAfterSessions);
      if (checks.length === 0) lines.push('No title reached the session count of the check.', '');
      for (const [game, check] of checks) {
        lines.push(
          `After ${check.sessions} sessions of ${game} (${fixed(check.atSeconds, 0)} s): learned / true ratio, error, confidence (* = in force)`,
          '',
          learnedTable(check.entries),
          '',
        );
      }
      const endEntries = judgedEntries(result.learnedAtEnd);
      const within = endEntries.filter((entry) => entry.error! <= targetLimits.learnedError).length;
      const waiting = result.learnedAtEnd.filter((entry) => !entry.active && entry.error !== null);
      const waitingWithin = waiting.filter((entry) => entry.error! <= targetLimits.learnedError).length;
      lines.push(
        `At the end of the run: ${endEntries.length} of ${result.learnedAtEnd.length} entries in force, ${within} of them within 10 % of the truth ` +
          `(worst: ${worstLine(endEntries)}); of the ${waiting.length} not in force (confidence below the minimum), ${waitingWithin} are already within 10 %.`,
        '',
      );
    }
  }
  return lines.join('\n');
}

/** One row per model, one column per dimension. */
function learnedTable(entries: readonly LearnedCostError[]): string {
  const dimensions = [...new Set(entries.map((entry) => entry.dimension))].sort();
  const models = [...new Set(entries.map((entry) => entry.model))].sort();
  const rows = models.map((model) => [
    model,
    ...dimensions.map((dimension) => {
      const entry = entries.find(
        (candidate) => candidate.model === model && candidate.dimension === dimension,
      );
      if (!entry || entry.learnedRatio === null) return '—';
      return `${entry.learnedRatio.toFixed(3)} / ${entry.trueRatio.toFixed(3)}, ${percent(entry.error!)}, ${entry.confidence.toFixed(2)}${entry.active ? ' *' : ''}`;
    }),
  ]);
  return table(['model', ...dimensions], rows, []);
}

function worstLine(entries: readonly LearnedCostError[]): string {
  const sorted = [...entries].sort((a, b) => b.error! - a.error!).slice(0, 3);
  if (sorted.length === 0) return 'none';
  return sorted
    .map(
      (entry) =>
        `${entry.game} on ${entry.model} ${entry.dimension} ${percent(entry.error!)} (true x${entry.trueRatio.toFixed(3)}, learned x${entry.learnedRatio!.toFixed(3)})`,
    )
    .join('; ');
}

export function renderMarkdown(environment: QualityEnvironment, runs: readonly QualityRun[]): string {
  const first = runs[0];
  const fleet = first
    ? Object.entries(
        first.fleet.reduce<Record<string, number>>((counts, node) => {
          const key = `${node.model} x${node.gpus}`;
          counts[key] = (counts[key] ?? 0) + 1;
          return counts;
        }, {}),
      )
        .map(([kind, nodes]) => `${nodes} x (${kind})`)
        .join(', ')
    : '';
  const truthRows = runs
    .filter((run, index) => runs.findIndex((other) => other.seed === run.seed) === index)
    .map((run) => {
      const titles = Object.entries(run.truth.titles)
        .map(([game, factors]) => `${game} ${factors.render.toFixed(2)}/${factors.vram.toFixed(2)}`)
        .join(', ');
      return `- seed ${run.seed}: ${titles}; encoder by model: ${Object.entries(run.truth.encoderByModel)
        .map(([model, factor]) => `${model} ${factor.toFixed(2)}`)
        .join(', ')}`;
    });
  return `# Placement quality benchmark

- Date: ${environment.date}
- Machine: ${environment.machine}, ${environment.cores} cores; Node ${environment.node}
- \`npm run bench:quality\` (tsx bench/quality.bench.ts); seeds ${environment.seeds.join(', ')}; peak loads ${environment.loads.join(', ')}; ${environment.trace.durationSeconds} virtual seconds per run; ${environment.totalSeconds.toFixed(1)} s of wall time, ${environment.cpuSeconds.toFixed(1)} s of CPU (other work shares this machine)
- Learned costs in this build: ${environment.learnedCosts ? 'yes (vca.costs, flushed every flushSeconds of virtual time)' : 'no (the VCA prices every session from the catalog; telemetry counts as max(committed, measured))'}

## Method

The real VCA (\`createVca\`: embedded store, placement index, session and fleet services) runs behind a
virtual clock; nothing goes over HTTP. Every policy plays the same trace:

- **Fleet**: ${first ? `${first.fleet.length} nodes / ${first.fleet.reduce((sum, node) => sum + node.gpus, 0)} GPUs` : ''} — ${fleet}; registered through \`vca.fleet.registerNodes\`.
- **Truth**: each title's true render cost is its catalog cost x a factor drawn in 0.72..1.30, its VRAM
  (base and per-megapixel) x another; each model's true encoder cost is the catalog's (pixel rate) x
  1.00..1.10; each GPU has an idle VRAM footprint of 300-600 MiB (driver and streaming stack). A GPU's
  true render and encoder load is the sum of the true costs of the sessions running on it, its VRAM
  the footprint plus their true VRAM. A session loads its GPU 1-3 s after it is placed, until it ends.
- **Gamers**: Poisson arrivals, ramping from 20 % to 100 % of the peak rate over the first 20 % of the
  run, then flat; at the peak the expected concurrent true demand equals the peak load x the fleet's
  capacity on its tightest dimension (render here). Titles by popularity (Fortnite, Valorant, CS2 first),
  formats from each title's allowed resolutions and frame rates (1080p60 most often), only formats that
  fit some model of the fleet both by catalog and by truth. Each asks through \`vca.sessions.request\`
  (REST, \`wait: true\`: queued when nothing fits), heartbeats every 10 s, and plays a log-normal time
  (median ${environment.trace.medianSessionMinutes} min, sigma ${environment.trace.durationSigma}) from its assignment, then ends the session through the service.
- **Telemetry** (packed, spread): every node reports every 0.5 s through \`vca.fleet.recordTelemetry\`
  what its GPUs truly carried ${environment.simulation.lagRangeMs[0]}-${environment.simulation.lagRangeMs[1]} ms earlier (the sample's \`ts\`), utilization +- ${environment.simulation.noisePoints} points
  of noise and clamped to 0..100 % as nvidia-smi shows it (a GPU at 130 % reads 100 %); VRAM used and
  total, encoder sessions. The service's tick runs every 250 ms (as the gateway runs it for a 0.5 s
  report interval), queue passes whenever the service asks for one.
- **Policies**: \`packed\` and \`spread\` — ${policies.packed.description.replace(/^VCA, packed, /, '')}; \`catalog-only\` —
  ${policies['catalog-only'].description} (\`placement.requireTelemetry: false\`, no reports); \`oracle\` — ${policies.oracle.description}
  (a catalog whose title figures and encoder rates are the true ones, each model's VRAM less the largest
  footprint among the fleet's GPUs of that model).
- **Metrics**: admitted at once / after queueing, queue wait of those admitted after queueing, timed
  out (queue timeout 300 s), still queued at the end; overload GPU-seconds (true render or encoder
  > 100 %, or true VRAM > total); degraded session share (session-seconds on overloaded GPUs / all
  session-seconds); GPUs busy (mean number of GPUs with at least one session placed).

## Results

${summaryTable(runs)}

## Targets

Overload at most ${percent(targetLimits.overloadRatio, 0)} of catalog-only's; admitted at least ${percent(targetLimits.admittedRatio, 0)} of the oracle's;
learned costs in force within ${percent(targetLimits.learnedError, 0)} of the truth once a title has had ${environment.simulation.learnedCheckAfterSessions} sessions.

${targetsTable(runs)}

## Diagnosis

${runs.map(diagnosis).join('\n\n')}

${environment.learnedCosts ? `## Learned costs\n\nRatios are learned (or true) cost / catalog cost.\n\n${learnedSection(runs)}` : ''}
## The truth of each seed (render / VRAM factor per title)

${truthRows.join('\n')}
`;
}
