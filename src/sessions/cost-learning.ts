/**
 * Learned title costs at work: feeds the learner (src/cost/cost-learner.ts) each telemetry report with
 * the sessions running on the node, merges its evidence into the store every flush (so every gateway
 * instance sharing the store learns from all the telemetry, and a restart keeps what was learned), and
 * answers the ratios placement prices sessions with.
 */
import type { CatalogIndex, GameEntry } from '../cost/catalog.js';
import {
  type CostDimension,
  type CostEvidence,
  CostLearner,
  type CostLearningSettings,
  type LearnedCost,
} from '../cost/cost-learner.js';
import type { FrameSize } from '../cost/resolution.js';
import type { NodeView, StateStore } from '../state/state-store.js';
import type { SessionRecord } from './session.js';

/** What placement needs: a ratio per title, model and dimension, and a version that moves when they do. */
export interface LearnedCostSource {
  readonly version: number;
  ratio(game: string, model: string, dimension: CostDimension): number;
}

/** A learned cost as `GET /v1/costs` shows it: at the title's 1080p60 (or its first format). */
export interface LearnedCostView extends LearnedCost {
  format: { resolution: string; fps: number };
  /** The catalog's cost of that format on the model (ppm of the GPU, or MiB for vram). */
  catalog: number;
  /** The learned one: catalog x ratio. */
  learned: number;
}

export interface CostLearningOptions {
  store: StateStore;
  catalog: CatalogIndex;
  enabled: boolean;
  settings: CostLearningSettings;
}

export class CostLearning implements LearnedCostSource {
  readonly enabled: boolean;
  private readonly options: CostLearningOptions;
  private readonly learner: CostLearner;
  private flushing: Promise<void> | null = null;

  constructor(options: CostLearningOptions) {
    this.options = options;
    this.enabled = options.enabled;
    this.learner = new CostLearner(options.catalog, options.settings);
  }

  get version(): number {
    return this.learner.version;
  }

  ratio(game: string, model: string, dimension: CostDimension): number {
    return this.enabled ? this.learner.ratio(game, model, dimension) : 1;
  }

  /** One telemetry report: `node` as the store answered it, `sessions` the live sessions on it. */
  observe(node: NodeView, sessions: readonly SessionRecord[]): void {
    if (!this.enabled) return;
    for (const gpu of node.gpus) {
      const here = sessions.filter(
        (session) =>
          session.state === 'assigned' &&
          session.placement?.nodeId === node.id &&
          session.placement.gpuIndex === gpu.index,
      );
      this.learner.observe({
        gpuKey: `${node.id}#${gpu.index}`,
        model: gpu.model,
        measured: { gpu: gpu.measured.gpu, encoder: gpu.measured.encoder, vramMiB: gpu.measured.vramMiB },
        memoryTotalMiB: gpu.memoryTotalMiB,
        reservedVramMiB: gpu.reservedVramMiB,
        pendingSessions: gpu.pending.encoderSessions,
        stale: gpu.stale,
        throttled: gpu.throttleActive,
        sessions: here.map((session) => ({
          id: session.id,
          game: session.game,
          width: session.width,
          height: session.height,
          fps: session.fps,
        })),
      });
    }
  }

  /**
   * Merges this instance's new evidence into the store and solves the costs from the merged totals
   * (every instance's). On a store failure the evidence is kept for the next flush and the error thrown.
   * Calls while one runs wait for it.
   */
  async flush(): Promise<void> {
    if (!this.enabled) return;
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      const delta = this.learner.takeDelta();
      let totals: CostEvidence;
      try {
        totals = await this.options.store.mergeCostEvidence(delta);
      } catch (error) {
        this.learner.restoreDelta(delta);
        throw error;
      }
      this.learner.adopt(totals);
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** An operator's reset of one title: its evidence goes from the store and this instance; catalog again. */
  async reset(game: string): Promise<number> {
    this.options.catalog.game(game);
    const removed = await this.options.store.resetCostEvidence(game);
    this.learner.forget(game);
    return removed;
  }

  /** Every learned cost, with the catalog's and the learned figure at the title's reference format. */
  view(): LearnedCostView[] {
    const views: LearnedCostView[] = [];
    for (const entry of this.learner.entries()) {
      const game = this.options.catalog.catalog.games.get(entry.game);
      if (!game) continue;
      const format = referenceFormat(game);
      const priced = this.learner.priced(entry.game, entry.model, format.size, format.fps);
      if (!priced) continue;
      const field = entry.dimension === 'vram' ? 'vramMiB' : entry.dimension;
      views.push({
        ...entry,
        format: { resolution: `${format.size.width}x${format.size.height}`, fps: format.fps },
        catalog: priced.catalog[field],
        learned: Math.ceil(priced.catalog[field] * entry.ratio),
      });
    }
    return views.sort(
      (a, b) =>
        a.game.localeCompare(b.game) ||
        a.model.localeCompare(b.model) ||
        a.dimension.localeCompare(b.dimension),
    );
  }
}

/** 1920x1080 at 60 fps when the title offers it, else its first resolution and frame rate. */
function referenceFormat(game: GameEntry): { size: FrameSize; fps: number } {
  const size = game.resolutions.find((entry) => entry.width === 1920 && entry.height === 1080) ??
    game.resolutions[0] ?? { width: 1920, height: 1080 };
  return { size, fps: game.fps.includes(60) ? 60 : (game.fps[0] ?? 60) };
}
