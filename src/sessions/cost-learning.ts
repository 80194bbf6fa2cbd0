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
import type { StateStore, TelemetryGpu } from '../state/state-store.js';
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

type ObservedSession = Pick<SessionRecord, 'id' | 'game' | 'width' | 'height' | 'fps'>;
const noSessions: readonly ObservedSession[] = [];

export class CostLearning implements LearnedCostSource {
  readonly enabled: boolean;
  private readonly options: CostLearningOptions;
  private readonly learner: CostLearner;
  private flushing: Promise<void> | null = null;
  private readonly keys = new Map<string, readonly string[]>();

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

  /**
   * One telemetry report: `node` as the store answered it (a NodeView or a TelemetryOutcome), `sessions`
   * the live sessions on it.
   */
  observe(
    node: { readonly id: string; readonly gpus: readonly TelemetryGpu[] },
    sessions: readonly SessionRecord[],
  ): void {
    if (!this.enabled) return;
    // The sessions of each GPU, in one pass (most GPUs of a report hold none).
    const byGpu = sessions.length > 0 ? new Map<number, ObservedSession[]>() : undefined;
    for (const session of sessions) {
      const placement = session.placement;
      if (session.state !== 'assigned' || !placement || placement.nodeId !== node.id) continue;
      let list = byGpu!.get(placement.gpuIndex);
      if (!list) {
        list = [];
        byGpu!.set(placement.gpuIndex, list);
      }
      list.push({
        id: session.id,
        game: session.game,
        width: session.width,
        height: session.height,
        fps: session.fps,
      });
    }
    const keys = this.gpuKeys(node.id, node.gpus.length);
    for (const gpu of node.gpus) {
      this.learner.observe({
        gpuKey: keys[gpu.index] ?? `${node.id}#${gpu.index}`,
        model: gpu.model,
        measured: { gpu: gpu.measured.gpu, encoder: gpu.measured.encoder, vramMiB: gpu.measured.vramMiB },
        memoryTotalMiB: gpu.memoryTotalMiB,
        reservedVramMiB: gpu.reservedVramMiB,
        pendingSessions: gpu.pending.encoderSessions,
        stale: gpu.stale,
        throttled: gpu.throttleActive,
        sessions: byGpu?.get(gpu.index) ?? noSessions,
      });
    }
  }

  /** `<node>#<index>` for GPUs 0..count-1 of a node, made once per node (bounded like the learner's GPUs). */
  private gpuKeys(nodeId: string, count: number): readonly string[] {
    let keys = this.keys.get(nodeId);
    if (!keys || keys.length < count) {
      if (this.keys.size >= 100_000) this.keys.clear();
      keys = Array.from({ length: count }, (_, index) => `${nodeId}#${index}`);
      this.keys.set(nodeId, keys);
    }
    return keys;
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
