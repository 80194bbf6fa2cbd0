/**
 * A modelled GPU for machines without one (demos, tests): its load follows the sessions the gateway
 * placed on this node, learned from each telemetry answer's `sessions`. The model is deliberately not
 * the catalog: a title's TRUE render cost is its catalog cost times a per-title factor in [0.8, 1.25)
 * (`trueCostFactor`, seeded from the title id), so the gateway's "effective = max(committed, measured)"
 * has something real to correct. Encoder load is pixel rate / the model's NVENC pixel rate, VRAM the
 * title's VRAM model plus a driver footprint, power proportional to load, and temperature approaches
 * the equilibrium for that power with a first-order lag (time constant 30 s). Noise is seedable.
 */
import type { CatalogIndex, GameEntry, GpuModel } from '../../src/cost/index.js';
import { fullShare, sessionCost } from '../../src/cost/index.js';
import type { GpuReading } from './gpu-reading.js';
import type { SampleHandlers, SampleSource } from './sample-source.js';
import { hashString, hashToUnit, seededRandom } from './seeded-random.js';
import type { TelemetrySample } from './telemetry-sample.js';

/** One session as the gateway's telemetry answer lists it. */
export interface PlacedSession {
  sessionId: string;
  gpu: number;
  game: string;
  width: number;
  height: number;
  fps: number;
}

export interface SimulatedGpuOptions {
  model: GpuModel;
  catalog: CatalogIndex;
  gpuCount: number;
  intervalMs: number;
  /** Seeds the noise and the GPU UUIDs; same seed and same inputs give the same readings. */
  seed: number;
  now?: () => number;
}

/** Thermal time constant: how fast the die follows a load change (seconds to ~63 % of the step). */
const thermalTimeConstantSeconds = 30;
/** VRAM the driver and a headless compositor hold on a GPU with no sessions. */
const driverFootprintMiB = 250;
const idleTemperatureCelsius = 35;
/** Board power at idle as a share of the power limit. */
const idlePowerShare = 0.15;

/** Board power limits (W) of the catalog's models; the catalog has no power column. */
const powerLimitWatts: Readonly<Record<string, number>> = {
  'GRID K2': 117,
  'Tesla M60': 150,
  T4: 70,
  A10G: 300,
  L4: 72,
  L40S: 350,
  'RTX 4080 SUPER': 320,
  H100: 700,
};

/** Stand-in for a title the gateway placed but this probe's catalog does not know. */
const unknownTitle: GameEntry = {
  id: 'unknown',
  title: 'Unknown title',
  gpuCostAt1080p60: 0.3,
  vramBaseMiB: 1500,
  vramPerMegapixelMiB: 150,
  resolutions: [],
  fps: [],
  source: 'gpu-probe simulation default',
};

/** The per-title factor between true and catalog render cost, in [0.8, 1.25): stable per title id. */
export function trueCostFactor(gameId: string): number {
  return 0.8 + 0.45 * hashToUnit(`true-cost:${gameId}`);
}

/** Keeps only well-formed entries of an untrusted `sessions` array. */
function readPlacedSessions(value: unknown): PlacedSession[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.filter(
    (entry): entry is PlacedSession =>
      typeof entry === 'object' &&
      entry !== null &&
      typeof entry.sessionId === 'string' &&
      Number.isInteger(entry.gpu) &&
      typeof entry.game === 'string' &&
      [entry.width, entry.height, entry.fps].every((number) => typeof number === 'number' && number > 0),
  );
}

interface GpuThermalState {
  temperature: number;
  at: number;
}

export class SimulatedGpu implements SampleSource {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly powerLimit: number;
  private readonly thermal: GpuThermalState[];
  private readonly uuids: string[];
  private sessions: PlacedSession[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: SimulatedGpuOptions) {
    this.now = options.now ?? Date.now;
    this.random = seededRandom(options.seed);
    this.powerLimit = powerLimitWatts[options.model.name] ?? 250;
    const startedAt = this.now();
    this.thermal = Array.from({ length: options.gpuCount }, () => ({
      temperature: idleTemperatureCelsius,
      at: startedAt,
    }));
    this.uuids = Array.from({ length: options.gpuCount }, (_, index) => simulatedUuid(options.seed, index));
  }

  /** The sessions the gateway says run here now (replaces the previous list). */
  setSessions(sessions: readonly PlacedSession[]): void {
    this.sessions = sessions.filter((session) => session.gpu >= 0 && session.gpu < this.options.gpuCount);
  }

  /** Takes `sessions` from a telemetry answer; an answer without the list changes nothing. */
  learnFromAnswer(body: unknown): void {
    const sessions = readPlacedSessions((body as { sessions?: unknown } | null | undefined)?.sessions);
    if (sessions) this.setSessions(sessions);
  }

  get sessionCount(): number {
    return this.sessions.length;
  }

  start(handlers: SampleHandlers): void {
    handlers.up?.(true);
    handlers.sample(this.sample());
    this.timer = setInterval(() => handlers.sample(this.sample()), this.options.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads every GPU now, advancing the thermal model to this instant. */
  sample(): TelemetrySample {
    const ts = this.now();
    return { ts, gpus: this.thermal.map((_, index) => this.readGpu(index, ts)) };
  }

  private readGpu(index: number, ts: number): GpuReading {
    const { model, catalog } = this.options;
    const here = this.sessions.filter((session) => session.gpu === index);
    let render = 0;
    let encoder = 0;
    let vram = driverFootprintMiB;
    for (const session of here) {
      const size = { width: session.width, height: session.height };
      const game = catalog.catalog.games.get(session.game);
      // A title missing from our catalog is charged like a middling one so the stream still shows.
      const cost = sessionCost({ game: game ?? unknownTitle, size, fps: session.fps }, model);
      if (!cost) continue; // a model without NVENC never hosts a stream
      render += (cost.gpu / fullShare) * trueCostFactor(game?.id ?? session.game);
      encoder += cost.encoder / fullShare;
      vram += cost.vramMiB;
    }
    const busy = here.length > 0;
    // Idle GPUs read exactly 0 % like real ones; noise only rides on real work.
    const noise = (amplitude: number) => (busy ? (this.random() * 2 - 1) * amplitude : 0);
    const utilizationGpu = clampPercent(Math.round(render * 100 + noise(1.5)));
    const utilizationEncoder = clampPercent(Math.round(encoder * 100 + noise(1.5)));
    const utilizationMemory = clampPercent(Math.round(render * 35 + noise(1)));

    const heat = Math.min(1, 0.8 * Math.min(1, render) + 0.2 * Math.min(1, encoder));
    const powerDraw = this.powerLimit * (idlePowerShare + (1 - idlePowerShare) * heat) * (1 + noise(0.01));
    const thermal = this.thermal[index]!;
    const equilibrium =
      idleTemperatureCelsius + (model.throttleTemperatureCelsius - 8 - idleTemperatureCelsius) * heat;
    const elapsedSeconds = Math.max(0, (ts - thermal.at) / 1000);
    thermal.temperature =
      equilibrium +
      (thermal.temperature - equilibrium) * Math.exp(-elapsedSeconds / thermalTimeConstantSeconds);
    thermal.at = ts;
    const temperatureGpu = Math.round(thermal.temperature + noise(0.3));

    return {
      index,
      uuid: this.uuids[index]!,
      name: simulatedName(model),
      utilizationGpu,
      utilizationMemory,
      utilizationEncoder,
      utilizationDecoder: 0,
      temperatureGpu,
      memoryUsed: Math.min(model.vramMiB, Math.round(vram)),
      memoryTotal: model.vramMiB,
      powerDraw: Math.round(Math.min(this.powerLimit, powerDraw) * 100) / 100,
      powerLimit: this.powerLimit,
      encoderSessions: here.length,
      encoderAvgFps: busy ? Math.round(here.reduce((sum, session) => sum + session.fps, 0) / here.length) : 0,
      throttleActive: temperatureGpu >= model.throttleTemperatureCelsius,
    };
  }
}

function clampPercent(value: number): number {
  return Math.min(100, Math.max(0, value));
}

/** The name nvidia-smi would print: the first alias that starts with NVIDIA, else "NVIDIA <name>". */
function simulatedName(model: GpuModel): string {
  return model.aliases.find((alias) => alias.startsWith('NVIDIA ')) ?? `NVIDIA ${model.name}`;
}

function simulatedUuid(seed: number, index: number): string {
  const hex = [0, 1, 2, 3]
    .map((part) => hashString(`uuid:${seed}:${index}:${part}`).toString(16).padStart(8, '0'))
    .join('');
  return `GPU-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
