/**
 * A synthetic but realistic fleet (for the placement benchmark and any test that needs a large one): a `FleetState` wired to
 * a `PlacementIndex` and built from the real catalog, nodes of mixed GPU models spread over a few
 * regions, every GPU made ready by one telemetry report, a background load committed per GPU, a pool of
 * request shapes (title, resolution, fps, cost on every model) and helpers for steady-state churn
 * (commit a new session, release an older one, telemetry near the committed load plus noise).
 * Everything random comes from a seeded generator, so two runs build the same fleet.
 */

import { loadCatalog } from '../src/config/load-catalog.js';
import { CatalogIndex, type GameEntry } from '../src/cost/catalog.js';
import type { FrameSize } from '../src/cost/resolution.js';
import { fullShare, type LoadVector, sessionCost } from '../src/cost/session-cost.js';
import { FleetState, type FleetStateOptions } from '../src/fleet/fleet-state.js';
import type { GpuSlot, Headroom } from '../src/fleet/gpu-slot.js';
import type { NodeRegistration, RenderNode } from '../src/fleet/render-node.js';
import { PlacementIndex, type PlacementRequest } from '../src/placement/placement-index.js';
import type { PlacementStrategy } from '../src/placement/strategy.js';
import type { GpuTelemetry } from '../src/wire/index.js';
import { gaussian, seededRandom } from './seeded-random.js';

/** One kind of rendering node: its GPUs and how often it appears in the fleet. */
export interface NodeKind {
  model: string;
  count: number;
  weight: number;
}

/** A mix of what clouds and on-premises racks actually hold, old GRID boards included. */
const defaultNodeMix: readonly NodeKind[] = [
  { model: 'L4', count: 1, weight: 4 },
  { model: 'L40S', count: 1, weight: 2 },
  { model: 'A10G', count: 1, weight: 3 },
  { model: 'T4', count: 1, weight: 3 },
  { model: 'RTX 4080 SUPER', count: 2, weight: 1 },
  { model: 'Tesla M60', count: 2, weight: 1 },
  { model: 'GRID K2', count: 2, weight: 1 },
];

const defaultRegions: readonly string[] = ['eu-west', 'eu-central', 'us-east', 'ap-northeast'];

/** The placement settings of config/default.yaml. */
const defaultHeadroom: Headroom = { gpu: 0.9, encoder: 0.9, vram: 0.95 };

/** One playable format with what it costs on every model that can stream it. */
export interface RequestShape {
  /** Position in `Fleet.shapes`. */
  readonly id: number;
  game: GameEntry;
  size: FrameSize;
  fps: number;
  region: string | undefined;
  costs: Map<string, LoadVector>;
  /** Ready-made placement requests, one per strategy (built once, outside any timed region). */
  requests: Record<PlacementStrategy, PlacementRequest>;
  /** Live sessions of this shape, in no order (swap-remove through `LiveSession.slot`). */
  live: LiveSession[];
}

/** A live session as the benchmark tracks it: enough to release it later. */
export interface LiveSession {
  id: string;
  gpu: GpuSlot;
  cost: LoadVector;
  shape: RequestShape;
  /** Position in `shape.live`. */
  slot: number;
}

export interface FleetOptions {
  /** GPUs in the fleet (exact: the last node is trimmed to fit). */
  gpus: number;
  seed?: number;
  mix?: readonly NodeKind[];
  regions?: readonly string[];
  headroom?: Headroom;
  /** Mean committed share of each GPU's busiest dimension after the background fill (0..1). */
  occupancy?: number;
  /** Distinct request shapes in the pool. */
  shapeCount?: number;
  /** Share of request shapes that ask for a region (the rest may go anywhere). */
  regionShare?: number;
  /** The fleet's clock, ms; telemetry is stamped with it. */
  now?: number;
  staleAfterMs?: number;
  configDir?: string;
  /** Builds the placement index (default: `new PlacementIndex(headroom)`); for comparing versions. */
  createIndex?: (headroom: Headroom) => PlacementIndex;
}

export interface Fleet {
  readonly catalog: CatalogIndex;
  readonly cluster: FleetState;
  readonly index: PlacementIndex;
  readonly nodes: RenderNode[];
  readonly gpus: GpuSlot[];
  readonly shapes: RequestShape[];
  readonly random: () => number;
  now: number;
  /** Live sessions in the fleet. */
  readonly liveSessions: number;
  /** Places `shape` with `strategy` and commits it; the session, or undefined when nothing fits. */
  place(shape: RequestShape, strategy: PlacementStrategy): LiveSession | undefined;
  /** Commits a session of `shape` costing `cost` on `gpu` under a fresh id. */
  commit(gpu: GpuSlot, cost: LoadVector, shape: RequestShape): LiveSession;
  release(session: LiveSession): void;
  /**
   * Releases a random live session of `shape` (any session when none is live): paired with each
   * placement it keeps the session mix stationary, as when departures follow the same demand as
   * arrivals, while where the sessions sit evolves under the strategy.
   */
  releaseLike(shape: RequestShape): LiveSession | undefined;
  /** Releases one live session chosen uniformly at random. */
  releaseRandom(): LiveSession | undefined;
  /** Reports telemetry for `gpu`: its committed load plus measurement noise. */
  reportTelemetry(gpu: GpuSlot): void;
  /** Mean over GPUs that can stream of the committed share of the busiest dimension. */
  occupancy(): number;
}

let sessionSequence = 0;

/** Committed share of the busiest dimension of `gpu` (0 = idle, 1 = at the headroom limit). */
function busiestShare(gpu: GpuSlot, headroom: Headroom): number {
  const c = gpu.committed;
  return Math.max(
    c.gpu / (headroom.gpu * fullShare),
    c.encoder / (headroom.encoder * fullShare),
    c.vramMiB / (headroom.vram * gpu.memoryTotalMiB),
  );
}

function fitsCommitted(gpu: GpuSlot, cost: LoadVector, headroom: Headroom): boolean {
  const c = gpu.committed;
  if (c.gpu + cost.gpu > Math.floor(headroom.gpu * fullShare)) return false;
  if (c.encoder + cost.encoder > Math.floor(headroom.encoder * fullShare)) return false;
  if (c.vramMiB + cost.vramMiB > Math.floor(headroom.vram * gpu.memoryTotalMiB)) return false;
  const model = gpu.model;
  if (model.encoderSessionScope === 'gpu' && model.encoderSessionLimit !== null) {
    if (c.encoderSessions + 1 > model.encoderSessionLimit) return false;
  }
  const node = gpu.node;
  if (node.systemEncoderSessionLimit !== null) {
    let sessions = 0;
    for (const other of node.gpus) sessions += other.committed.encoderSessions;
    if (sessions + 1 > node.systemEncoderSessionLimit) return false;
  }
  return true;
}

/** How often gamers ask for a frame height: 1080p dominates, 4K is a minority (an estimate). */
function resolutionPopularity(height: number): number {
  if (height <= 720) return 2;
  if (height <= 1080) return 5;
  if (height <= 1440) return 2;
  return 1;
}

/** How often gamers ask for a frame rate: 60 fps dominates (an estimate). */
function fpsPopularity(fps: number): number {
  if (fps === 60) return 6;
  if (fps === 120) return 2;
  return 1;
}

function weightedPick<T>(items: readonly T[], weight: (item: T) => number, random: () => number): T {
  let total = 0;
  for (const item of items) total += weight(item);
  let left = random() * total;
  for (const item of items) {
    left -= weight(item);
    if (left < 0) return item;
  }
  return items[items.length - 1]!;
}

/**
 * Builds the pool of request shapes: a title at random, one of its resolutions and frame rates weighted
 * by popularity.
 */
function buildRequestShapes(
  catalog: CatalogIndex,
  count: number,
  random: () => number,
  regions: readonly string[],
  regionShare: number,
): RequestShape[] {
  const games = [...catalog.catalog.games.values()];
  const models = [...catalog.catalog.gpuModels.values()];
  const shapes: RequestShape[] = [];
  for (let i = 0; i < count; i++) {
    const game = games[Math.floor(random() * games.length)]!;
    const size = weightedPick(game.resolutions, (s) => resolutionPopularity(s.height), random);
    const fps = weightedPick(game.fps, fpsPopularity, random);
    const region = random() < regionShare ? regions[Math.floor(random() * regions.length)] : undefined;
    const costs = new Map<string, LoadVector>();
    for (const model of models) {
      const cost = sessionCost({ game, size, fps }, model);
      if (cost) costs.set(model.name, cost);
    }
    shapes.push({
      id: i,
      live: [],
      game,
      size,
      fps,
      region,
      costs,
      requests: {
        packed: { costs, strategy: 'packed', region },
        spread: { costs, strategy: 'spread', region },
      },
    });
  }
  return shapes;
}

/** Builds a ready fleet of exactly `options.gpus` GPUs with its background load committed. */
export function buildFleet(options: FleetOptions): Fleet {
  const random = seededRandom(options.seed ?? 1);
  const mix = options.mix ?? defaultNodeMix;
  const regions = options.regions ?? defaultRegions;
  const headroom = options.headroom ?? defaultHeadroom;
  const occupancyTarget = options.occupancy ?? 0.6;
  const catalog = new CatalogIndex(
    loadCatalog({ catalog: { gamesFile: 'games.yaml', gpusFile: 'gpus.yaml' } }, options.configDir),
  );
  const clusterOptions: FleetStateOptions = {
    catalog,
    headroom,
    temperatureMarginCelsius: 5,
    staleAfterMs: options.staleAfterMs ?? 6_000,
    requireTelemetry: true,
  };
  const cluster = new FleetState(clusterOptions);
  const index = options.createIndex?.(headroom) ?? new PlacementIndex(headroom);
  cluster.setListener(index);

  const totalWeight = mix.reduce((sum, kind) => sum + kind.weight, 0);
  const nodes: RenderNode[] = [];
  const gpus: GpuSlot[] = [];
  let liveSessions = 0;
  const fleet: Fleet = {
    catalog,
    cluster,
    index,
    nodes,
    gpus,
    shapes: [],
    random,
    now: options.now ?? 1_700_000_000_000,
    get liveSessions() {
      return liveSessions;
    },
    place(shape, strategy) {
      const choice = index.pick(shape.requests[strategy]);
      return choice ? fleet.commit(choice.gpu, choice.cost, shape) : undefined;
    },
    commit(gpu, cost, shape) {
      const session: LiveSession = { id: `s${++sessionSequence}`, gpu, cost, shape, slot: shape.live.length };
      cluster.commit(gpu, session.id, cost, 0);
      shape.live.push(session);
      liveSessions++;
      return session;
    },
    release(session) {
      const live = session.shape.live;
      const last = live.pop()!;
      if (last !== session) {
        live[session.slot] = last;
        last.slot = session.slot;
      }
      liveSessions--;
      cluster.uncommit(session.gpu, session.id, session.cost);
    },
    releaseLike(shape) {
      if (shape.live.length === 0) return fleet.releaseRandom();
      const session = shape.live[Math.floor(random() * shape.live.length)]!;
      fleet.release(session);
      return session;
    },
    releaseRandom() {
      if (liveSessions === 0) return undefined;
      let at = Math.floor(random() * liveSessions);
      for (const shape of fleet.shapes) {
        if (at < shape.live.length) {
          const session = shape.live[at]!;
          fleet.release(session);
          return session;
        }
        at -= shape.live.length;
      }
      return undefined;
    },
    reportTelemetry(gpu) {
      cluster.recordTelemetry(gpu.node, { gpus: [telemetryFor(gpu, random)] }, fleet.now);
    },
    occupancy() {
      let sum = 0;
      let counted = 0;
      for (const gpu of gpus) {
        if (gpu.model.nvencEngines === 0) continue;
        sum += busiestShare(gpu, headroom);
        counted++;
      }
      return counted === 0 ? 0 : sum / counted;
    },
  };

  // Nodes: kinds drawn by weight until the GPU count is reached; the last one trimmed to fit.
  for (let n = 0; gpus.length < options.gpus; n++) {
    let pick = random() * totalWeight;
    let kind = mix[mix.length - 1]!;
    for (const candidate of mix) {
      pick -= candidate.weight;
      if (pick < 0) {
        kind = candidate;
        break;
      }
    }
    const count = Math.min(kind.count, options.gpus - gpus.length);
    const registration: NodeRegistration = {
      id: `node-${n}`,
      host: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      port: 47_984,
      protocol: 'moonlight',
      gpus: [{ model: kind.model, count }],
      labels: { region: regions[n % regions.length]! },
    };
    const { node } = cluster.register(registration, fleet.now);
    nodes.push(node);
    gpus.push(...node.gpus);
  }

  fleet.shapes.push(
    ...buildRequestShapes(catalog, options.shapeCount ?? 400, random, regions, options.regionShare ?? 0),
  );

  // Background load: each GPU filled towards its own target (mean = occupancy), so the fleet holds
  // idle, half-full and nearly full GPUs, as it does after hours of arrivals and departures.
  for (const gpu of gpus) {
    if (gpu.model.nvencEngines === 0) continue;
    const target = Math.min(1, Math.max(0, occupancyTarget + (random() - 0.5) * 0.8));
    for (let attempt = 0; attempt < 24 && busiestShare(gpu, headroom) < target; attempt++) {
      const shape = fleet.shapes[Math.floor(random() * fleet.shapes.length)]!;
      const cost = shape.costs.get(gpu.model.name);
      if (!cost || !fitsCommitted(gpu, cost, headroom)) continue;
      if (busiestShare(gpu, headroom) + costShare(cost, gpu, headroom) > target + 0.1) continue;
      fleet.commit(gpu, cost, shape);
    }
  }

  // One telemetry report per node makes it ready (requireTelemetry) with measured load near committed.
  for (const node of nodes) {
    cluster.recordTelemetry(node, { gpus: node.gpus.map((gpu) => telemetryFor(gpu, random)) }, fleet.now);
  }
  return fleet;
}

function costShare(cost: LoadVector, gpu: GpuSlot, headroom: Headroom): number {
  return Math.max(
    cost.gpu / (headroom.gpu * fullShare),
    cost.encoder / (headroom.encoder * fullShare),
    cost.vramMiB / (headroom.vram * gpu.memoryTotalMiB),
  );
}

/**
 * What nvidia-smi would report for `gpu`: the committed load with a few percent of multiplicative
 * noise, a small driver/desktop baseline of VRAM, and a temperature that follows the render load
 * (kept below every model's throttle margin so the fleet stays eligible).
 */
function telemetryFor(gpu: GpuSlot, random: () => number): GpuTelemetry {
  const c = gpu.committed;
  const noise = () => 1 + 0.04 * gaussian(random);
  const percent = (ppm: number) => Math.min(100, Math.max(0, (ppm / 10_000) * noise()));
  const renderShare = c.gpu / fullShare;
  return {
    index: gpu.index,
    utilizationGpu: percent(c.gpu),
    utilizationEncoder: percent(c.encoder),
    memoryUsed: Math.round(c.vramMiB * noise() + 150 + 100 * random()),
    memoryTotal: gpu.model.vramMiB,
    temperatureGpu: Math.round(
      Math.min(gpu.model.throttleTemperatureCelsius - 8, 35 + 35 * renderShare + 3 * gaussian(random)),
    ),
    encoderSessions: c.encoderSessions,
  };
}
