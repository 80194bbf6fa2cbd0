/**
 * The game and GPU catalogs as the domain sees them: validated, frozen, and indexed by id and by the
 * names GPUs report themselves with. Loading YAML and validating it belongs to `config`; this module
 * owns the types and the look-ups.
 */
import { VcaError } from '../errors.js';
import type { FrameSize } from './resolution.js';
import { frameSizeName, parseResolution } from './resolution.js';

/** One title: what it costs at the reference format (1920x1080 at 60 fps) on the reference GPU. */
export interface GameEntry {
  readonly id: string;
  readonly title: string;
  /** Fraction of the reference GPU's render capacity one session uses at 1920x1080, 60 fps. */
  readonly gpuCostAt1080p60: number;
  /** VRAM one session needs: base plus a share per megapixel of the frame. */
  readonly vramBaseMiB: number;
  readonly vramPerMegapixelMiB: number;
  readonly resolutions: readonly FrameSize[];
  readonly fps: readonly number[];
  readonly source: string;
}

/** One GPU model. Capacities are relative to the reference GPU named in `gpus.yaml`. */
export interface GpuModel {
  readonly name: string;
  readonly aliases: readonly string[];
  /** Render capacity relative to the reference GPU (reference = 1). */
  readonly renderCapacity: number;
  readonly vramMiB: number;
  /** GPUs on one board (GRID K2: 2); informational, each GPU is its own bin. */
  readonly gpusPerBoard: number;
  /** NVENC engines; 0 means the GPU cannot encode a stream and never hosts a session. */
  readonly nvencEngines: number;
  /** Pixels per second all NVENC engines of one GPU encode at H.264 low-latency, 0 when none. */
  readonly encoderPixelRate: number;
  /** Concurrent encoder sessions allowed, or null when only the hardware limits them. */
  readonly encoderSessionLimit: number | null;
  /** `system`: the limit is shared by every GPU of a host (GeForce driver); `gpu`: per GPU. */
  readonly encoderSessionScope: 'gpu' | 'system';
  readonly throttleTemperatureCelsius: number;
  readonly source: string;
}

export interface Catalog {
  readonly referenceGpu: string;
  readonly games: ReadonlyMap<string, GameEntry>;
  readonly gpuModels: ReadonlyMap<string, GpuModel>;
}

function normaliseModelName(name: string): string {
  return name
    .toLowerCase()
    .replace(/^nvidia\s+/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Look-ups over a catalog: games by id, GPU models by canonical name or any alias nvidia-smi prints. */
export class CatalogIndex {
  readonly catalog: Catalog;
  private readonly modelsByName = new Map<string, GpuModel>();

  constructor(catalog: Catalog) {
    this.catalog = catalog;
    for (const model of catalog.gpuModels.values()) {
      for (const name of [model.name, ...model.aliases])
        this.modelsByName.set(normaliseModelName(name), model);
    }
  }

  game(id: string): GameEntry {
    const game = this.catalog.games.get(id);
    if (!game) {
      throw new VcaError(
        'VCA_ERR_UNKNOWN_GAME',
        `Game "${id}" is not in the catalog; GET /v1/catalog lists the playable titles`,
        { field: 'game' },
      );
    }
    return game;
  }

  /** The model for a name as registered or as nvidia-smi reports it, or undefined. */
  findModel(name: string): GpuModel | undefined {
    return this.modelsByName.get(normaliseModelName(name));
  }

  model(name: string): GpuModel {
    const model = this.findModel(name);
    if (!model) {
      throw new VcaError(
        'VCA_ERR_UNKNOWN_GPU_MODEL',
        `GPU model "${name}" is not in config/gpus.yaml; known models: ${[...this.catalog.gpuModels.keys()].join(', ')}`,
      );
    }
    return model;
  }

  /** Checks a request's format against the title and returns the frame size it names. */
  checkFormat(game: GameEntry, resolution: string, fps: number): FrameSize {
    const size = parseResolution(resolution);
    if (!game.resolutions.some((allowed) => allowed.width === size.width && allowed.height === size.height)) {
      throw new VcaError(
        'VCA_ERR_RESOLUTION_NOT_ALLOWED',
        `${game.title} does not allow ${frameSizeName(size)}; allowed: ${game.resolutions.map(frameSizeName).join(', ')}`,
        { field: 'resolution' },
      );
    }
    if (!game.fps.includes(fps)) {
      throw new VcaError(
        'VCA_ERR_FPS_NOT_ALLOWED',
        `${game.title} does not allow ${fps} fps; allowed: ${game.fps.join(', ')}`,
        { field: 'fps' },
      );
    }
    return size;
  }
}
