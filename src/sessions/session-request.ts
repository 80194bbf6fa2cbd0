/**
 * Turns what a gamer asked for into a `SessionSpec`: checks the title, format and constraints against
 * the catalog and computes the session's cost on every GPU model that could ever host it.
 */

import type { CatalogIndex } from '../cost/catalog.js';
import { applyRatios } from '../cost/cost-learner.js';
import { fullShare, type LoadVector, sessionCost } from '../cost/session-cost.js';
import { VcaError } from '../errors.js';
import type { Headroom } from '../fleet/gpu-slot.js';
import type { LearnedCostSource } from './cost-learning.js';
import type { SessionSpec, SessionTransport } from './session.js';

export interface SessionAsk {
  game: string;
  resolution: string;
  fps: number;
  region?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  /** Only these GPU models (names or aliases). */
  gpuModels?: readonly string[] | undefined;
  priority?: string | undefined;
  /** Round-trip ms the gamer measured per region (unknown regions already dropped: `dropUnknownRegions`). */
  latencies?: Readonly<Record<string, number>> | undefined;
}

/**
 * The latency a session reported for `region`; undefined when it reported none. Own properties only: a
 * region may be named like an Object.prototype member ("constructor", "__proto__").
 */
export function reportedLatency(
  latencies: Readonly<Record<string, number>>,
  region: string,
): number | undefined {
  return Object.hasOwn(latencies, region) ? latencies[region] : undefined;
}

/** What a gamer may report: at most this many regions, each 0 < ms <= maxMs (else 400). */
export const latencyLimits = { maxRegions: 64, maxMs: 10_000 } as const;

/**
 * Keeps the latencies of regions the gateway knows (the `region` label of a registered node) and names
 * each dropped one in a warning: a region no node is in cannot host the session, and a gamer's client
 * may have pinged a region that has since gone, so this is never an error. Without `latencies`,
 * nothing changes; when none is known, the session is placed as if the gamer had reported none.
 */
export function dropUnknownRegions(
  latencies: Readonly<Record<string, number>> | undefined,
  knownRegions: ReadonlySet<string>,
): { latencies: Readonly<Record<string, number>> | undefined; warnings: string[] } {
  if (latencies === undefined) return { latencies, warnings: [] };
  const kept: [string, number][] = [];
  const warnings: string[] = [];
  for (const [region, ms] of Object.entries(latencies)) {
    if (knownRegions.has(region)) kept.push([region, ms]);
    else warnings.push(`latencies.${region}: no rendering node is in region "${region}"; ignored`);
  }
  // Nothing left: placed as if the gamer had reported nothing (an empty map would exclude every region).
  if (kept.length === 0) return { latencies: undefined, warnings };
  // fromEntries defines own properties: a region named "__proto__" is kept, not assigned to the prototype.
  return { latencies: Object.freeze(Object.fromEntries(kept)), warnings };
}

export interface SessionSpecContext {
  catalog: CatalogIndex;
  headroom: Headroom;
  priorityClasses: readonly string[];
  defaultPriority: string;
  /**
   * Cost tables already computed, by format and model restriction (they depend on nothing else but
   * the learned costs: the caller clears the cache when `learned.version` moves).
   */
  costCache?: Map<string, Readonly<Record<string, LoadVector>>>;
  /** Learned cost ratios (src/sessions/cost-learning.ts); without, the catalog's costs. */
  learned?: LearnedCostSource;
}

/** Formats and model restrictions are few; the cache is bounded anyway against odd request mixes. */
const costCacheLimit = 10_000;

/** Would `cost` fit an empty GPU of this model under headroom? If not, no GPU of it can ever host it. */
function fitsEmptyGpu(cost: LoadVector, vramMiB: number, headroom: Headroom): boolean {
  return (
    cost.gpu <= headroom.gpu * fullShare &&
    cost.encoder <= headroom.encoder * fullShare &&
    cost.vramMiB <= headroom.vram * vramMiB
  );
}

/** `owner`: the gamer the session will belong to (null: asked by a front-end for any gamer). */
export function buildSessionSpec(
  ask: SessionAsk,
  id: string,
  transport: SessionTransport,
  context: SessionSpecContext,
  owner: string | null = null,
): SessionSpec {
  const game = context.catalog.game(ask.game);
  const size = context.catalog.checkFormat(game, ask.resolution, ask.fps);
  const priority = ask.priority ?? context.defaultPriority;
  if (!context.priorityClasses.includes(priority)) {
    throw new VcaError(
      'VCA_ERR_UNKNOWN_PRIORITY',
      `Priority "${priority}" is not configured; use one of ${context.priorityClasses.join(', ')}`,
      { field: 'priority' },
    );
  }
  const allowedModels = ask.gpuModels?.map((name) => context.catalog.model(name).name);
  const cacheKey = `${game.id}|${size.width}x${size.height}|${ask.fps}|${allowedModels?.join(',') ?? '*'}`;
  let costs = context.costCache?.get(cacheKey);
  if (!costs) {
    const table: Record<string, LoadVector> = {};
    for (const model of context.catalog.catalog.gpuModels.values()) {
      if (allowedModels && !allowedModels.includes(model.name)) continue;
      const catalogCost = sessionCost({ game, size, fps: ask.fps }, model);
      if (!catalogCost) continue;
      const learned = context.learned;
      const cost = learned
        ? applyRatios(catalogCost, (dimension) => learned.ratio(game.id, model.name, dimension))
        : catalogCost;
      // A format whose (learned) cost cannot fit an empty GPU of a model never goes to that model.
      if (fitsEmptyGpu(cost, model.vramMiB, context.headroom)) table[model.name] = Object.freeze(cost);
    }
    costs = Object.freeze(table);
    if (context.costCache) {
      if (context.costCache.size >= costCacheLimit) context.costCache.clear();
      context.costCache.set(cacheKey, costs);
    }
  }
  if (Object.keys(costs).length === 0) {
    throw new VcaError(
      'VCA_ERR_UNPLACEABLE',
      `No GPU model${allowedModels ? ' among those requested' : ''} can render ${game.title} at ${size.width}x${size.height} ${ask.fps} fps; choose a lower resolution or frame rate`,
    );
  }
  return {
    id,
    game: game.id,
    width: size.width,
    height: size.height,
    fps: ask.fps,
    priority,
    transport,
    region: ask.region,
    labels: ask.labels === undefined ? undefined : Object.freeze({ ...ask.labels }),
    latencies: ask.latencies === undefined ? undefined : Object.freeze({ ...ask.latencies }),
    costs,
    owner,
  };
}
