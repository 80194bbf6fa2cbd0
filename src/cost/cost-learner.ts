/**
 * Learned title costs: from telemetry, how much each title truly costs on each GPU model, per
 * dimension, as a ratio to what the catalog says (the cost model's resolution and frame-rate scaling
 * stays; the ratio corrects the title's figures for that model).
 *
 * Model, per GPU model m and dimension d: a sample of one GPU measures
 *   y = measured - idle baseline = sum over titles t of r_t * x_t + noise,
 * where x_t is the catalog cost of the sessions of title t on that GPU (several sessions, several
 * titles per GPU). The ratios r minimise the squared residuals plus a prior pulling each r_t towards 1
 * (the catalog), within the band [min, max]: a box-constrained ridge regression over the normal
 * equations (A = sum x x^T, b = sum x y), solved by projected coordinate descent. A and b are sums,
 * so evidence from any number of gateway instances merges by addition (the store keeps the totals).
 *
 * Samples that would mislead are not used: a GPU with sessions placed after the sample was taken
 * (pending), a GPU whose set of sessions changed since its previous sample (a session that ended or
 * started may be half in the measure: sample lag), a throttled or stale GPU, and a reading implausible
 * for what runs there (y below a quarter or above four times the catalog's expectation x band edge: a
 * probe stuck at 0, another process loading the GPU; a probe stuck at 100 % reads 100 % idle too, so
 * its baseline leaves nothing). A saturated reading (a GPU at 100 % says only "at least") counts only
 * while the costs learned so far predict less than it: it raises a title that truly does not fit a
 * model up to the bound, enough for placement to stop sending it there. Whatever gets through, the band
 * bounds every ratio.
 */
import type { CatalogIndex } from './catalog.js';
import type { FrameSize } from './resolution.js';
import { type LoadVector, sessionCost } from './session-cost.js';

export type CostDimension = 'gpu' | 'encoder' | 'vram';
export const costDimensions: readonly CostDimension[] = ['gpu', 'encoder', 'vram'];

export interface CostLearningSettings {
  /** Ratios are kept within [min, max] of the catalog. */
  band: { min: number; max: number };
  /** Strength of the pull towards the catalog, in samples of the title alone on a GPU. */
  priorSamples: number;
  /** Confidence = sessions / (sessions + confidenceSessions). */
  confidenceSessions: number;
  /** A learned ratio is used for placement once its confidence reaches this. */
  minConfidence: number;
  /**
   * ... or this, for a ratio above 1 (the title is heavier than the catalog says): a price too low
   * overloads GPUs, one too high only costs a slot while the evidence grows.
   */
  minConfidenceHeavier: number;
}

export const defaultCostLearningSettings: CostLearningSettings = {
  band: { min: 0.5, max: 2 },
  priorSamples: 5,
  confidenceSessions: 5,
  minConfidence: 0.5,
  minConfidenceHeavier: 0.16,
};

/** One session present on a GPU when it was sampled. */
export interface ObservedSession {
  id: string;
  game: string;
  width: number;
  height: number;
  fps: number;
}

/** One GPU's sample, with what ran on it. Loads in the units of LoadVector; null: not reported. */
export interface GpuObservation {
  /** Identifies the GPU across samples (`<node>#<index>`). */
  gpuKey: string;
  model: string;
  measured: { gpu: number | null; encoder: number | null; vramMiB: number | null };
  memoryTotalMiB: number;
  /** VRAM the GPU keeps for itself (the store's idle reserve): its VRAM baseline until one is measured. */
  reservedVramMiB: number;
  /** Sessions placed after the sample was taken: the sample cannot show them. */
  pendingSessions: number;
  stale: boolean;
  throttled: boolean;
  sessions: readonly ObservedSession[];
}

/**
 * The evidence: additive sums, by key `<model>|<dimension>|<kind>|<title>[|<title>]`: kind `A` the
 * normal matrix (titles in name order), `b` the right-hand side, `n` samples, `s` sessions seen.
 */
export type CostEvidence = Map<string, number>;

export interface LearnedCost {
  game: string;
  model: string;
  dimension: CostDimension;
  /** Learned / catalog. */
  ratio: number;
  confidence: number;
  samples: number;
  sessions: number;
  /** Placement uses `ratio` (confidence reached minConfidence). */
  active: boolean;
}

/** Dimension units in the regression: shares of the GPU, and GiB, so sums stay well scaled. */
const unitOf: Record<CostDimension, number> = { gpu: 1e6, encoder: 1e6, vram: 1024 };
/** A reading at or above this share of the GPU is saturated: a lower bound, not a measure. */
const saturated = 0.97;
/** Sessions already counted once, per GPU model: bounded memory. */
const seenLimit = 100_000;
/** GPUs whose previous sample is remembered: bounded memory. */
const gpuLimit = 100_000;

export function evidenceKey(
  model: string,
  dimension: CostDimension,
  kind: 'A' | 'b' | 'n' | 's',
  title: string,
  other?: string,
): string {
  return other === undefined
    ? `${model}|${dimension}|${kind}|${title}`
    : `${model}|${dimension}|${kind}|${title}|${other}`;
}

/** Whether an evidence key names `game` (the stores delete those on a reset). */
export function evidenceKeyNames(key: string, game: string): boolean {
  const parts = key.split('|');
  return parts[3] === game || parts[4] === game;
}

export class CostLearner {
  private readonly catalog: CatalogIndex;
  private readonly settings: CostLearningSettings;
  private delta: CostEvidence = new Map();
  private totals: CostEvidence = new Map();
  private learned = new Map<string, LearnedCost>();
  /**
   * Per `<dimension>|<title>`: the ratio learned heavier than the catalog on other models (mean of the
   * ones in force, by sessions), for a model with no evidence of its own yet.
   */
  private heavierElsewhere = new Map<string, number>();
  /** Per GPU: the session set of its previous sample, and its idle baseline (ppm, ppm, MiB). */
  private readonly gpus = new Map<string, { sessions: string; baseline: LoadVector | null }>();
  private readonly seen = new Set<string>();
  /** Bumped whenever the learned table changes: cost caches keyed on it. */
  version = 0;

  constructor(catalog: CatalogIndex, settings: CostLearningSettings = defaultCostLearningSettings) {
    this.catalog = catalog;
    this.settings = settings;
  }

  /** Takes in one GPU's sample. */
  observe(observation: GpuObservation): void {
    const sessions = observation.sessions;
    // Most GPUs hold no session or one: no arrays for those.
    const signature =
      sessions.length === 0
        ? ''
        : sessions.length === 1
          ? sessions[0]!.id
          : sessions
              .map((session) => session.id)
              .sort()
              .join(',');
    let state = this.gpus.get(observation.gpuKey);
    if (!state) {
      // GPUs of nodes long gone are never told apart from live ones: bound the memory instead.
      if (this.gpus.size >= gpuLimit) this.gpus.clear();
      state = { sessions: signature, baseline: null };
      this.gpus.set(observation.gpuKey, state);
      return;
    }
    const unchanged = state.sessions === signature;
    state.sessions = signature;
    if (!unchanged || observation.pendingSessions > 0 || observation.stale || observation.throttled) return;
    const { measured } = observation;
    if (observation.sessions.length === 0) {
      // Idle, and idle at the previous sample as well: the GPU's own baseline.
      // Updated in place: an idle GPU reports this every interval.
      const baseline = state.baseline;
      if (baseline) {
        baseline.gpu = measured.gpu ?? baseline.gpu;
        baseline.encoder = measured.encoder ?? baseline.encoder;
        baseline.vramMiB = measured.vramMiB ?? baseline.vramMiB;
        return;
      }
      state.baseline = {
        gpu: measured.gpu ?? 0,
        encoder: measured.encoder ?? 0,
        vramMiB: measured.vramMiB ?? observation.reservedVramMiB,
        encoderSessions: 0,
      };
      return;
    }
    const model = this.catalog.catalog.gpuModels.get(observation.model);
    if (!model || observation.model.includes('|')) return;
    // The catalog cost of what runs there, per title.
    const byTitle = new Map<string, LoadVector>();
    for (const session of observation.sessions) {
      const game = this.catalog.catalog.games.get(session.game);
      if (!game || session.game.includes('|')) return;
      const cost = sessionCost(
        { game, size: { width: session.width, height: session.height }, fps: session.fps },
        model,
      );
      if (!cost) return;
      const sum = byTitle.get(session.game) ?? { gpu: 0, encoder: 0, vramMiB: 0, encoderSessions: 0 };
      sum.gpu += cost.gpu;
      sum.encoder += cost.encoder;
      sum.vramMiB += cost.vramMiB;
      byTitle.set(session.game, sum);
    }
    const baseline = state.baseline ?? {
      gpu: 0,
      encoder: 0,
      vramMiB: observation.reservedVramMiB,
      encoderSessions: 0,
    };
    const titles = [...byTitle.keys()].sort();
    const full = { gpu: 1e6, encoder: 1e6, vram: observation.memoryTotalMiB };
    for (const dimension of costDimensions) {
      const field = dimension === 'vram' ? 'vramMiB' : dimension;
      const value = measured[field];
      if (value === null) continue;
      const unit = unitOf[dimension];
      const y = (value - baseline[field]) / unit;
      const x = titles.map((title) => byTitle.get(title)![field] / unit);
      const expected = x.reduce((total, v) => total + v, 0);
      if (expected <= 0) continue;
      const { min, max } = this.settings.band;
      if (y < (min / 2) * expected || y > max * 2 * expected) continue;
      // A saturated reading says "at least this much": evidence only while the costs learned so far
      // predict less (then it raises them towards the bound), never otherwise.
      if (value >= saturated * full[dimension]) {
        let predicted = 0;
        for (let i = 0; i < titles.length; i++)
          predicted += x[i]! * this.learnedRatio(titles[i]!, observation.model, dimension);
        if (y <= predicted) continue;
      }
      for (let i = 0; i < titles.length; i++) {
        const title = titles[i]!;
        this.add(evidenceKey(observation.model, dimension, 'b', title), x[i]! * y);
        this.add(evidenceKey(observation.model, dimension, 'n', title), 1);
        for (let j = i; j < titles.length; j++) {
          this.add(evidenceKey(observation.model, dimension, 'A', title, titles[j]!), x[i]! * x[j]!);
        }
      }
    }
    for (const session of observation.sessions) {
      const seenKey = `${observation.model}|${session.id}`;
      if (this.seen.has(seenKey)) continue;
      if (this.seen.size >= seenLimit) this.seen.clear();
      this.seen.add(seenKey);
      for (const dimension of costDimensions)
        this.add(evidenceKey(observation.model, dimension, 's', session.game), 1);
    }
  }

  /** The evidence gathered since the last call (to merge into the store's totals). */
  takeDelta(): CostEvidence {
    const delta = this.delta;
    this.delta = new Map();
    return delta;
  }

  /** Puts evidence taken by takeDelta back, after the store could not merge it. */
  restoreDelta(delta: CostEvidence): void {
    for (const [key, value] of delta) this.add(key, value);
  }

  /** Adopts the merged totals (all instances' evidence) and solves the ratios again. */
  adopt(totals: CostEvidence): void {
    this.totals = totals;
    this.learned = solve(totals, this.settings);
    this.heavierElsewhere = heavierAcrossModels(this.learned);
    this.version++;
  }

  /** Forgets what this instance gathered about `game` and has not merged yet. */
  forget(game: string): void {
    for (const key of [...this.delta.keys()]) if (evidenceKeyNames(key, game)) this.delta.delete(key);
    const kept = new Map([...this.totals].filter(([key]) => !evidenceKeyNames(key, game)));
    this.adopt(kept);
  }

  /** The ratio learned so far, active or not (1 before any evidence). */
  private learnedRatio(game: string, model: string, dimension: CostDimension): number {
    return this.learned.get(`${model}|${dimension}|${game}`)?.ratio ?? 1;
  }

  /**
   * The ratio placement applies: the learned one once active; for a model with no evidence of the
   * title yet, the title's ratio on other models when it is heavier there (its first session on this
   * model would otherwise go where the catalog says it barely fits); else 1 (the catalog).
   */
  ratio(game: string, model: string, dimension: CostDimension): number {
    const entry = this.learned.get(`${model}|${dimension}|${game}`);
    if (entry?.active) return entry.ratio;
    if (entry !== undefined && entry.samples > 0) return 1;
    return this.heavierElsewhere.get(`${dimension}|${game}`) ?? 1;
  }

  entries(): LearnedCost[] {
    return [...this.learned.values()];
  }

  /** The catalog cost of `game` at `size`/`fps` on `model`, and what the learned ratios make it. */
  priced(game: string, model: string, size: FrameSize, fps: number) {
    const entry = this.catalog.catalog.games.get(game);
    const gpu = this.catalog.catalog.gpuModels.get(model);
    if (!entry || !gpu) return undefined;
    const catalog = sessionCost({ game: entry, size, fps }, gpu);
    if (!catalog) return undefined;
    return { catalog, learned: applyRatios(catalog, (dimension) => this.ratio(game, model, dimension)) };
  }

  private add(key: string, value: number): void {
    this.delta.set(key, (this.delta.get(key) ?? 0) + value);
  }
}

/** `cost` with each dimension scaled by its ratio, rounded up (a session never costs less than that). */
export function applyRatios(cost: LoadVector, ratio: (dimension: CostDimension) => number): LoadVector {
  const gpu = ratio('gpu');
  const encoder = ratio('encoder');
  const vram = ratio('vram');
  if (gpu === 1 && encoder === 1 && vram === 1) return cost;
  return {
    gpu: Math.ceil(cost.gpu * gpu),
    encoder: Math.ceil(cost.encoder * encoder),
    vramMiB: Math.ceil(cost.vramMiB * vram),
    encoderSessions: cost.encoderSessions,
  };
}

/** Per `<dimension>|<title>`: the sessions-weighted mean of the ratios in force above 1, across models. */
function heavierAcrossModels(learned: ReadonlyMap<string, LearnedCost>): Map<string, number> {
  const sums = new Map<string, { weighted: number; sessions: number }>();
  for (const entry of learned.values()) {
    if (!entry.active || entry.ratio <= 1) continue;
    const key = `${entry.dimension}|${entry.game}`;
    const sum = sums.get(key) ?? { weighted: 0, sessions: 0 };
    sum.weighted += entry.ratio * Math.max(1, entry.sessions);
    sum.sessions += Math.max(1, entry.sessions);
    sums.set(key, sum);
  }
  return new Map([...sums].map(([key, sum]) => [key, sum.weighted / sum.sessions]));
}

/** The learned ratios of every model, dimension and title the evidence names. */
export function solve(evidence: CostEvidence, settings: CostLearningSettings): Map<string, LearnedCost> {
  // Group the sums by model and dimension.
  const groups = new Map<string, { titles: Set<string>; entries: [string[], number][] }>();
  for (const [key, value] of evidence) {
    const parts = key.split('|');
    if (parts.length < 4 || !Number.isFinite(value)) continue;
    const [model, dimension] = parts as [string, string];
    if (!costDimensions.includes(dimension as CostDimension)) continue;
    const id = `${model}|${dimension}`;
    let group = groups.get(id);
    if (!group) {
      group = { titles: new Set(), entries: [] };
      groups.set(id, group);
    }
    group.titles.add(parts[3]!);
    if (parts[4] !== undefined) group.titles.add(parts[4]);
    group.entries.push([parts, value]);
  }
  const learned = new Map<string, LearnedCost>();
  const { min, max } = settings.band;
  for (const [id, group] of groups) {
    const [model, dimension] = id.split('|') as [string, CostDimension];
    const titles = [...group.titles].sort();
    const index = new Map(titles.map((title, i) => [title, i]));
    const k = titles.length;
    const a = Array.from({ length: k }, () => new Float64Array(k));
    const b = new Float64Array(k);
    const n = new Float64Array(k);
    const s = new Float64Array(k);
    for (const [parts, value] of group.entries) {
      const i = index.get(parts[3]!)!;
      if (parts[2] === 'A' && parts[4] !== undefined) {
        const j = index.get(parts[4])!;
        a[i]![j] = (a[i]![j] ?? 0) + value;
        if (i !== j) a[j]![i] = (a[j]![i] ?? 0) + value;
      } else if (parts[2] === 'b') b[i]! += value;
      else if (parts[2] === 'n') n[i]! += value;
      else if (parts[2] === 's') s[i]! += value;
    }
    // Prior: priorSamples samples of the title alone at its mean size, saying "ratio 1".
    const prior = titles.map((_, i) => (n[i]! > 0 ? (settings.priorSamples * a[i]![i]!) / n[i]! : 1));
    const r = new Float64Array(k).fill(1);
    for (let sweep = 0; sweep < 200; sweep++) {
      let moved = 0;
      for (let i = 0; i < k; i++) {
        const row = a[i]!;
        let rest = b[i]! + prior[i]!;
        for (let j = 0; j < k; j++) if (j !== i) rest -= row[j]! * r[j]!;
        const next = Math.min(max, Math.max(min, rest / (row[i]! + prior[i]!)));
        moved = Math.max(moved, Math.abs(next - r[i]!));
        r[i] = next;
      }
      if (moved < 1e-7) break;
    }
    for (const [i, title] of titles.entries()) {
      const confidence = s[i]! / (s[i]! + settings.confidenceSessions);
      learned.set(`${model}|${dimension}|${title}`, {
        game: title,
        model,
        dimension,
        ratio: r[i]!,
        confidence,
        samples: n[i]!,
        sessions: s[i]!,
        active:
          n[i]! > 0 &&
          (confidence >= settings.minConfidence ||
            (r[i]! > 1 && confidence >= settings.minConfidenceHeavier)),
      });
    }
  }
  return learned;
}
