/**
 * The session cost vector: what one stream of a title at a format takes from one GPU of a given
 * model, on every dimension the balancer watches. For title t at W x H and fps on model m, with
 * k_t = gpuCostAt1080p60 of t: gpu = k_t * (W*H*fps)/(1920*1080*60) / renderCapacity_m,
 * encoder = W*H*fps / encoderPixelRate_m, vram = vramBaseMiB_t + vramPerMegapixelMiB_t * W*H/1e6,
 * encoderSessions = 1 (README "How it decides"; units and where the vector is used:
 * docs/architecture.md "The model"; the catalog figures and their sources: config/CATALOG.md).
 */
import type { GameEntry, GpuModel } from './catalog.js';
import type { FrameSize } from './resolution.js';

/** Pixels per second of the reference format, 1920x1080 at 60 fps. */
export const referencePixelRate = 1920 * 1080 * 60;

/** Parts per million: the unit of the `gpu` and `encoder` dimensions (1e6 = the whole GPU). */
export const fullShare = 1_000_000;

/** A share under headroom (0..1) as a capacity in parts per million, rounded down. */
export function capacityShare(headroomShare: number): number {
  return Math.floor(headroomShare * fullShare);
}

/** A measured percentage (clamped to 0..100) in parts per million, rounded. */
export function percentToShare(percent: number): number {
  return Math.round(Math.min(100, Math.max(0, percent)) * (fullShare / 100));
}

/**
 * Load on one GPU, per dimension. Every field is an integer so that committed load, kept as a running
 * sum of session costs, equals the sum of the live sessions' costs exactly (no floating-point drift),
 * in memory and in Redis alike.
 */
export interface LoadVector {
  /** Render load in parts per million of this GPU. */
  gpu: number;
  /** NVENC load in parts per million of this GPU's encoder throughput. */
  encoder: number;
  vramMiB: number;
  encoderSessions: number;
}

export interface SessionFormat {
  readonly game: GameEntry;
  readonly size: FrameSize;
  readonly fps: number;
}

export function zeroLoad(): LoadVector {
  return { gpu: 0, encoder: 0, vramMiB: 0, encoderSessions: 0 };
}

export function canHostStreams(model: GpuModel): boolean {
  return model.nvencEngines > 0 && model.encoderPixelRate > 0;
}

/** Cost of one session of `format` on one GPU of `model`; undefined when the model has no NVENC. */
export function sessionCost(format: SessionFormat, model: GpuModel): LoadVector | undefined {
  if (!canHostStreams(model)) return undefined;
  const pixelRate = format.size.width * format.size.height * format.fps;
  const megapixels = (format.size.width * format.size.height) / 1e6;
  // Rounded up: a session never costs less than the model says.
  return {
    gpu: Math.ceil(
      ((format.game.gpuCostAt1080p60 * (pixelRate / referencePixelRate)) / model.renderCapacity) * fullShare,
    ),
    encoder: Math.ceil((pixelRate / model.encoderPixelRate) * fullShare),
    vramMiB: Math.ceil(format.game.vramBaseMiB + format.game.vramPerMegapixelMiB * megapixels),
    encoderSessions: 1,
  };
}

export function addLoad(into: LoadVector, cost: LoadVector, sign: 1 | -1): void {
  into.gpu += sign * cost.gpu;
  into.encoder += sign * cost.encoder;
  into.vramMiB += sign * cost.vramMiB;
  into.encoderSessions += sign * cost.encoderSessions;
}
