/**
 * The trace of the placement-quality benchmark, deterministic per seed: a mixed fleet, each title's
 * true cost (the catalog's times a per-title factor), each GPU model's true encoder speed, each GPU's
 * own VRAM footprint, and the gamers who arrive (Poisson, ramping up to a peak offered load), with the
 * format they ask for and how long they play. Every policy is run on the same trace.
 */
import { seededRandom } from '../../kit/seeded-random.js';
import type { Catalog, GameEntry, GpuModel } from '../../src/cost/catalog.js';
import type { FrameSize } from '../../src/cost/resolution.js';
import { fullShare, type LoadVector, referencePixelRate, sessionCost } from '../../src/cost/session-cost.js';

/** One node kind of the fleet: `nodes` nodes of `gpusPerNode` GPUs of `model`. */
export interface NodeKind {
  model: string;
  gpusPerNode: number;
  nodes: number;
}

/**
 * 24 nodes / 29 GPUs of six models, all able to stream (an H100 has no NVENC and would only sit idle):
 * cloud L4 and A10G, big L40S, GeForce hosts (8 encoder sessions per host), old T4 and Tesla M60.
 */
export const defaultFleet: readonly NodeKind[] = [
  { model: 'L4', gpusPerNode: 1, nodes: 6 },
  { model: 'L4', gpusPerNode: 2, nodes: 2 },
  { model: 'L40S', gpusPerNode: 1, nodes: 3 },
  { model: 'A10G', gpusPerNode: 1, nodes: 4 },
  { model: 'T4', gpusPerNode: 1, nodes: 3 },
  { model: 'T4', gpusPerNode: 2, nodes: 1 },
  { model: 'RTX 4080 SUPER', gpusPerNode: 1, nodes: 2 },
  { model: 'RTX 4080 SUPER', gpusPerNode: 2, nodes: 1 },
  { model: 'Tesla M60', gpusPerNode: 2, nodes: 1 },
  { model: 'Tesla M60', gpusPerNode: 1, nodes: 1 },
];

/** How often gamers ask for each title (relative weights): a few titles take most sessions. */
export const titlePopularity: Readonly<Record<string, number>> = {
  fortnite: 20,
  valorant: 16,
  'counter-strike-2': 14,
  'league-of-legends': 12,
  'gta-v': 9,
  'rocket-league': 7,
  'cyberpunk-2077': 6,
  'elden-ring': 5,
  'baldurs-gate-3': 4,
  hades: 3,
  'stardew-valley': 2,
  'alan-wake-2': 1.5,
  'unigine-heaven': 0.5,
};

const resolutionWeights: Readonly<Record<string, number>> = {
  '720p': 2,
  '1080p': 6,
  '1440p': 2,
  '2160p': 0.5,
};
const fpsWeights: Readonly<Record<number, number>> = { 30: 1.5, 60: 6, 90: 1, 120: 1, 144: 0.5 };

export interface TraceOptions {
  seed: number;
  durationSeconds: number;
  /** Offered load at the plateau, as a share of the fleet's true capacity on its tightest dimension. */
  peakLoad: number;
  /** Share of the run spent ramping from 20 % of the peak up to it (the rest is the plateau). */
  rampShare: number;
  /** Median session length, minutes (log-normal, sigma `durationSigma`). */
  medianSessionMinutes: number;
  durationSigma: number;
  /** Per-title true/catalog factor bounds, render and VRAM drawn independently. */
  factorRange: readonly [number, number];
  /** Per-model true/catalog factor bounds of the encoder. */
  encoderFactorRange: readonly [number, number];
  /** Driver and streaming-stack VRAM of an idle GPU, MiB. */
  baselineVramRangeMiB: readonly [number, number];
  /** Delay between placement and the session loading its GPU, ms. */
  startRampRangeMs: readonly [number, number];
  headroom: { gpu: number; encoder: number; vram: number };
  fleet: readonly NodeKind[];
}

export const defaultTraceOptions: Omit<TraceOptions, 'seed'> = {
  durationSeconds: 3600,
  peakLoad: 1,
  rampShare: 0.2,
  medianSessionMinutes: 3,
  durationSigma: 0.8,
  factorRange: [0.72, 1.3],
  encoderFactorRange: [1, 1.1],
  baselineVramRangeMiB: [300, 600],
  startRampRangeMs: [1000, 3000],
  headroom: { gpu: 0.9, encoder: 0.9, vram: 0.95 },
  fleet: defaultFleet,
};

export interface SimulatedNode {
  id: string;
  model: string;
  gpuCount: number;
  /** Offset of this node's telemetry reports within the report interval, ms. */
  reportPhaseMs: number;
}

export interface SimulatedGpu {
  /** `nodeId#index`, as the VCA keys its GPUs. */
  key: string;
  nodeId: string;
  index: number;
  model: GpuModel;
  baselineVramMiB: number;
}

/** What a title truly costs, as factors on the catalog's figures. */
export interface TitleTruth {
  game: string;
  renderFactor: number;
  vramFactor: number;
}

export interface Arrival {
  /** Sequence number, also the gamer's identity. */
  id: number;
  /** Arrival time from the start of the run, ms. */
  at: number;
  game: string;
  resolution: string;
  size: FrameSize;
  fps: number;
  /** How long the gamer plays once assigned, ms. */
  playMs: number;
  /** Delay between assignment and the session loading its GPU, ms. */
  startRampMs: number;
}

export interface Trace {
  options: TraceOptions;
  catalog: Catalog;
  nodes: SimulatedNode[];
  gpus: SimulatedGpu[];
  titles: Map<string, TitleTruth>;
  /** True encoder cost / catalog encoder cost, per GPU model. */
  encoderFactors: Map<string, number>;
  arrivals: Arrival[];
  /** Arrivals per second at the plateau. */
  peakArrivalsPerSecond: number;
  /** Expected concurrent true demand at the plateau / fleet capacity, per dimension. */
  peakDemandShare: { render: number; encoder: number; vram: number };
}

/** The true cost vector of `format` on `model` (undefined: the model cannot stream). */
export function trueSessionCost(
  trace: Pick<Trace, 'titles' | 'encoderFactors'>,
  game: GameEntry,
  size: FrameSize,
  fps: number,
  model: GpuModel,
): LoadVector | undefined {
  const catalogCost = sessionCost({ game, size, fps }, model);
  if (!catalogCost) return undefined;
  const truth = trace.titles.get(game.id);
  const renderFactor = truth?.renderFactor ?? 1;
  const vramFactor = truth?.vramFactor ?? 1;
  const encoderFactor = trace.encoderFactors.get(model.name) ?? 1;
  return {
    gpu: Math.round(catalogCost.gpu * renderFactor),
    encoder: Math.round(catalogCost.encoder * encoderFactor),
    vramMiB: Math.round(catalogCost.vramMiB * vramFactor),
    encoderSessions: 1,
  };
}

/** Would `cost` fit an empty GPU of `model` (with its VRAM footprint) under headroom? */
export function fitsEmpty(
  cost: LoadVector,
  model: GpuModel,
  baselineVramMiB: number,
  headroom: TraceOptions['headroom'],
): boolean {
  return (
    cost.gpu <= headroom.gpu * fullShare &&
    cost.encoder <= headroom.encoder * fullShare &&
    cost.vramMiB + baselineVramMiB <= headroom.vram * model.vramMiB
  );
}

function uniform(random: () => number, [low, high]: readonly [number, number]): number {
  return low + (high - low) * random();
}

function pickWeighted<T>(random: () => number, items: readonly T[], weight: (item: T) => number): T {
  const total = items.reduce((sum, item) => sum + weight(item), 0);
  let target = random() * total;
  for (const item of items) {
    target -= weight(item);
    if (target < 0) return item;
  }
  return items[items.length - 1]!;
}

function standardNormal(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

interface Format {
  game: GameEntry;
  resolution: string;
  size: FrameSize;
  fps: number;
  weight: number;
}

/** Arrival rate relative to the plateau at time `atMs`: linear from 0.2 to 1 over the ramp. */
export function loadProfile(atMs: number, options: Pick<TraceOptions, 'durationSeconds' | 'rampShare'>) {
  const rampMs = options.durationSeconds * 1000 * options.rampShare;
  if (rampMs <= 0 || atMs >= rampMs) return 1;
  return 0.2 + 0.8 * (atMs / rampMs);
}

export function buildTrace(catalog: Catalog, options: TraceOptions): Trace {
  const random = seededRandom(options.seed);
  const nodes: SimulatedNode[] = [];
  const gpus: SimulatedGpu[] = [];
  const reportIntervalMs = 500;
  for (const kind of options.fleet) {
    const model = catalog.gpuModels.get(kind.model);
    if (!model) throw new Error(`fleet model ${kind.model} is not in the catalog`);
    for (let n = 0; n < kind.nodes; n++) {
      const id = `${kind.model.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-x${kind.gpusPerNode}-${n + 1}`;
      nodes.push({
        id,
        model: model.name,
        gpuCount: kind.gpusPerNode,
        reportPhaseMs: Math.floor(random() * reportIntervalMs),
      });
      for (let index = 0; index < kind.gpusPerNode; index++) {
        gpus.push({
          key: `${id}#${index}`,
          nodeId: id,
          index,
          model,
          baselineVramMiB: Math.round(uniform(random, options.baselineVramRangeMiB)),
        });
      }
    }
  }

  const titles = new Map<string, TitleTruth>();
  for (const game of catalog.games.values()) {
    titles.set(game.id, {
      game: game.id,
      renderFactor: round3(uniform(random, options.factorRange)),
      vramFactor: round3(uniform(random, options.factorRange)),
    });
  }
  const encoderFactors = new Map<string, number>();
  for (const model of catalog.gpuModels.values())
    encoderFactors.set(model.name, round3(uniform(random, options.encoderFactorRange)));
  const truth = { titles, encoderFactors };

  // Formats a gamer may ask for: allowed by the title, and placeable both by the catalog's price and
  // by the truth on some GPU of the fleet (so every policy, the oracle included, could admit them).
  const fleetModels = [...new Set(gpus.map((gpu) => gpu.model))];
  const maxBaseline = Math.max(...gpus.map((gpu) => gpu.baselineVramMiB));
  const formats: Format[] = [];
  for (const game of catalog.games.values()) {
    const popularity = titlePopularity[game.id] ?? 1;
    for (const size of game.resolutions) {
      const resolution = resolutionName(size);
      for (const fps of game.fps) {
        const weight = popularity * (resolutionWeights[resolution] ?? 1) * (fpsWeights[fps] ?? 1);
        const catalogFits = fleetModels.some((model) => {
          const cost = sessionCost({ game, size, fps }, model);
          return cost !== undefined && fitsEmpty(cost, model, 0, options.headroom);
        });
        const truthFits = fleetModels.some((model) => {
          const cost = trueSessionCost(truth, game, size, fps, model);
          return cost !== undefined && fitsEmpty(cost, model, maxBaseline, options.headroom);
        });
        if (catalogFits && truthFits) formats.push({ game, resolution, size, fps, weight });
      }
    }
  }
  // Normalise per title so a title's popularity does not depend on how many formats it allows.
  const titleWeight = new Map<string, number>();
  for (const format of formats)
    titleWeight.set(format.game.id, (titleWeight.get(format.game.id) ?? 0) + format.weight);
  for (const format of formats)
    format.weight =
      ((titlePopularity[format.game.id] ?? 1) * format.weight) / titleWeight.get(format.game.id)!;

  // Peak arrival rate: expected concurrent true demand = peakLoad x fleet capacity on the tightest
  // dimension. Demand of a format per dimension, in fleet-wide units: render in reference GPUs,
  // encoder in pixels/s (true, on the fleet's average encoder factor), VRAM in MiB.
  const capacity = { render: 0, encoder: 0, vram: 0 };
  let encoderFactorSum = 0;
  for (const gpu of gpus) {
    capacity.render += gpu.model.renderCapacity;
    capacity.encoder += gpu.model.encoderPixelRate;
    capacity.vram += gpu.model.vramMiB - gpu.baselineVramMiB;
    encoderFactorSum += encoderFactors.get(gpu.model.name) ?? 1;
  }
  const meanEncoderFactor = encoderFactorSum / gpus.length;
  const totalWeight = formats.reduce((sum, format) => sum + format.weight, 0);
  const demand = { render: 0, encoder: 0, vram: 0 };
  for (const format of formats) {
    const share = format.weight / totalWeight;
    const title = titles.get(format.game.id)!;
    const pixelRate = format.size.width * format.size.height * format.fps;
    demand.render +=
      share * format.game.gpuCostAt1080p60 * title.renderFactor * (pixelRate / referencePixelRate);
    demand.encoder += share * pixelRate * meanEncoderFactor;
    demand.vram +=
      share *
      title.vramFactor *
      (format.game.vramBaseMiB +
        (format.game.vramPerMegapixelMiB * format.size.width * format.size.height) / 1e6);
  }
  const meanPlayMs =
    options.medianSessionMinutes * 60_000 * Math.exp((options.durationSigma * options.durationSigma) / 2);
  const perSessionShare = {
    render: demand.render / capacity.render,
    encoder: demand.encoder / capacity.encoder,
    vram: demand.vram / capacity.vram,
  };
  const tightest = Math.max(perSessionShare.render, perSessionShare.encoder, perSessionShare.vram);
  // Little's law: concurrent sessions = rate x mean length.
  const peakConcurrent = options.peakLoad / tightest;
  const peakArrivalsPerSecond = peakConcurrent / (meanPlayMs / 1000);
  const peakDemandShare = {
    render: peakConcurrent * perSessionShare.render,
    encoder: peakConcurrent * perSessionShare.encoder,
    vram: peakConcurrent * perSessionShare.vram,
  };

  // Non-homogeneous Poisson arrivals by thinning.
  const arrivals: Arrival[] = [];
  const endMs = options.durationSeconds * 1000;
  let at = 0;
  for (;;) {
    at += (-Math.log(1 - random()) / peakArrivalsPerSecond) * 1000;
    if (at >= endMs) break;
    if (random() >= loadProfile(at, options)) continue;
    const format = pickWeighted(random, formats, (candidate) => candidate.weight);
    const minutes = options.medianSessionMinutes * Math.exp(options.durationSigma * standardNormal(random));
    arrivals.push({
      id: arrivals.length + 1,
      at: Math.round(at),
      game: format.game.id,
      resolution: format.resolution,
      size: format.size,
      fps: format.fps,
      playMs: Math.round(Math.min(60, Math.max(0.5, minutes)) * 60_000),
      startRampMs: Math.round(uniform(random, options.startRampRangeMs)),
    });
  }
  return {
    options,
    catalog,
    nodes,
    gpus,
    titles,
    encoderFactors,
    arrivals,
    peakArrivalsPerSecond,
    peakDemandShare,
  };
}

function resolutionName(size: FrameSize): string {
  switch (size.height) {
    case 720:
      return '720p';
    case 1080:
      return '1080p';
    case 1440:
      return '1440p';
    case 2160:
      return '2160p';
    default:
      return `${size.width}x${size.height}`;
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/**
 * The catalog an oracle would write: every title's figures replaced by the true ones, every model's
 * encoder rate by its true one, and each model's VRAM reduced by the largest idle footprint among the
 * fleet's GPUs of that model (the catalog has no per-GPU figure).
 */
export function trueCatalog(trace: Trace): Catalog {
  const games = new Map<string, GameEntry>();
  for (const game of trace.catalog.games.values()) {
    const truth = trace.titles.get(game.id)!;
    games.set(
      game.id,
      Object.freeze({
        ...game,
        gpuCostAt1080p60: game.gpuCostAt1080p60 * truth.renderFactor,
        vramBaseMiB: game.vramBaseMiB * truth.vramFactor,
        vramPerMegapixelMiB: game.vramPerMegapixelMiB * truth.vramFactor,
      }),
    );
  }
  const gpuModels = new Map<string, GpuModel>();
  for (const model of trace.catalog.gpuModels.values()) {
    const footprints = trace.gpus
      .filter((gpu) => gpu.model.name === model.name)
      .map((gpu) => gpu.baselineVramMiB);
    const encoderFactor = trace.encoderFactors.get(model.name) ?? 1;
    gpuModels.set(
      model.name,
      Object.freeze({
        ...model,
        vramMiB: model.vramMiB - (footprints.length > 0 ? Math.max(...footprints) : 0),
        encoderPixelRate: model.encoderPixelRate > 0 ? model.encoderPixelRate / encoderFactor : 0,
      }),
    );
  }
  return Object.freeze({ referenceGpu: trace.catalog.referenceGpu, games, gpuModels });
}
