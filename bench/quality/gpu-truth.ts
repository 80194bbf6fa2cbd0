/**
 * What each simulated GPU truly carries, and the time integrals the benchmark reports. A session
 * loads its GPU from `effectiveFrom` (placement plus its start ramp) until it ends; the truth now is
 * kept as running sums, and the truth at an earlier instant (what a lagging telemetry sample sees) is
 * recomputed from the sessions still remembered on the GPU.
 */
import { fullShare, type LoadVector } from '../../src/cost/session-cost.js';
import type { SimulatedGpu } from './trace.js';

/** A session as its GPU sees it. */
export interface GpuResident {
  id: string;
  game: string;
  /** `<game> <W>x<H>@<fps>`, for the diagnosis. */
  format: string;
  cost: LoadVector;
  /** When it starts loading the GPU, ms of virtual time. */
  effectiveFrom: number;
  /** When it stopped (ended by the gamer), ms; Infinity while it runs. */
  endedAt: number;
  /** Loading the GPU now: its start ramp is over and it has not ended. */
  active: boolean;
}

export interface TrueLoad {
  render: number;
  encoder: number;
  vramMiB: number;
  sessions: number;
}

/** How long ended sessions are remembered (longer than any telemetry lag). */
const historyMs = 5_000;

export class GpuTruth {
  readonly gpu: SimulatedGpu;
  /** Sessions placed here (loading or not yet) and those that ended within `historyMs`. */
  private readonly residents: GpuResident[] = [];
  /** Running sums over the sessions loading the GPU now. */
  readonly now: TrueLoad = { render: 0, encoder: 0, vramMiB: 0, sessions: 0 };
  /** Sessions placed here and not ended (loading or ramping up). */
  placed = 0;
  overloadMs = 0;
  /** Overloaded ms with one session alone on the GPU: its format truly does not fit this model. */
  overloadAloneMs = 0;
  /** The same, per format of the session alone. */
  readonly overloadAloneMsByFormat = new Map<string, number>();
  /** Overloaded ms by the dimension over its limit (several at once count in each). */
  readonly overloadMsByDimension = { render: 0, encoder: 0, vram: 0 };
  /** Per title: session-ms spent on this GPU while it was overloaded. */
  readonly degradedMsByGame = new Map<string, number>();

  constructor(gpu: SimulatedGpu) {
    this.gpu = gpu;
  }

  get vramTotalMiB(): number {
    return this.gpu.model.vramMiB;
  }

  isOverloaded(): boolean {
    return (
      this.now.render > fullShare ||
      this.now.encoder > fullShare ||
      this.now.vramMiB + this.gpu.baselineVramMiB > this.vramTotalMiB
    );
  }

  place(resident: GpuResident): void {
    this.residents.push(resident);
    this.placed++;
  }

  /** The session starts loading the GPU (its start ramp is over). */
  activate(id: string): void {
    const resident = this.residents.find((candidate) => candidate.id === id);
    if (!resident || resident.endedAt !== Infinity || resident.active) return;
    resident.active = true;
    this.add(resident.cost, 1);
  }

  /** The session ended at `at`; it stops loading the GPU if it had started. */
  end(id: string, at: number): void {
    const resident = this.residents.find((candidate) => candidate.id === id);
    if (!resident || resident.endedAt !== Infinity) return;
    if (resident.active) this.add(resident.cost, -1);
    resident.active = false;
    resident.endedAt = at;
    this.placed--;
    this.forget(at);
  }

  /** The truth at `at` (at most `historyMs` ago): what a sample taken then would show. */
  loadAt(at: number): TrueLoad {
    const load: TrueLoad = { render: 0, encoder: 0, vramMiB: 0, sessions: 0 };
    for (const resident of this.residents) {
      if (resident.effectiveFrom > at || resident.endedAt <= at) continue;
      load.render += resident.cost.gpu;
      load.encoder += resident.cost.encoder;
      load.vramMiB += resident.cost.vramMiB;
      load.sessions++;
    }
    return load;
  }

  /**
   * Accounts `ms` of virtual time in the current state (called before the state changes); returns the
   * session-ms degraded (sessions loading this GPU while it is overloaded).
   */
  accrue(ms: number): number {
    if (ms <= 0 || !this.isOverloaded()) return 0;
    this.overloadMs += ms;
    if (this.now.sessions <= 1) {
      this.overloadAloneMs += ms;
      const alone = this.residents.find((resident) => resident.active);
      if (alone)
        this.overloadAloneMsByFormat.set(
          alone.format,
          (this.overloadAloneMsByFormat.get(alone.format) ?? 0) + ms,
        );
    }
    if (this.now.render > fullShare) this.overloadMsByDimension.render += ms;
    if (this.now.encoder > fullShare) this.overloadMsByDimension.encoder += ms;
    if (this.now.vramMiB + this.gpu.baselineVramMiB > this.vramTotalMiB)
      this.overloadMsByDimension.vram += ms;
    for (const resident of this.residents) {
      if (resident.active)
        this.degradedMsByGame.set(resident.game, (this.degradedMsByGame.get(resident.game) ?? 0) + ms);
    }
    return this.now.sessions * ms;
  }

  private add(cost: LoadVector, sign: 1 | -1): void {
    this.now.render += sign * cost.gpu;
    this.now.encoder += sign * cost.encoder;
    this.now.vramMiB += sign * cost.vramMiB;
    this.now.sessions += sign;
  }

  private forget(now: number): void {
    for (let i = this.residents.length - 1; i >= 0; i--) {
      if (this.residents[i]!.endedAt < now - historyMs) this.residents.splice(i, 1);
    }
  }
}
