/**
 * One GPU of one node: the bin sessions are placed into. Holds what the VCA has committed to it, what
 * telemetry last measured, and whether it may take new sessions now.
 */
import type { GpuModel } from '../cost/catalog.js';
import { addLoad, capacityShare, type LoadVector, percentToShare, zeroLoad } from '../cost/session-cost.js';
import { effectiveOn, idleReserve } from './effective-load.js';
import type { RenderNode } from './render-node.js';
import type { GpuTelemetry } from './telemetry.js';

/** Measured load; null on a dimension the GPU did not report. */
export interface MeasuredLoad {
  gpu: number | null;
  encoder: number | null;
  vramMiB: number | null;
  encoderSessions: number | null;
}

export interface Headroom {
  gpu: number;
  encoder: number;
  vram: number;
}

export class GpuSlot {
  readonly key: string;
  readonly node: RenderNode;
  readonly index: number;
  readonly model: GpuModel;
  /** Sum of the costs of the live sessions placed here. Invariant: kept exact by `commit`/`uncommit`. */
  readonly committed: LoadVector = zeroLoad();
  readonly sessionIds = new Set<string>();
  /**
   * Sum of the costs of the live sessions placed here that no sample has covered yet (placed less than
   * the settle time before the last sample): the load telemetry cannot show yet. Kept exact with
   * `pendingSessions` by `addPending`/`dropPending`/`settle`.
   */
  readonly pending: LoadVector = zeroLoad();
  /** The sessions of `pending`: id -> when placed here (ms) and its cost. */
  readonly pendingSessions = new Map<string, { at: number; cost: LoadVector }>();
  /** The reference time of the last sample (the probe's clock, bounded by arrival), ms; null before one. */
  sampledAt: number | null = null;
  /**
   * VRAM the GPU uses with no session (driver, streaming stack, other processes), counted as committed:
   * the configured floor of its model, raised to what the last sample taken while it held no session
   * measured (a sample right after a session ended may still show some of it: the next idle sample
   * corrects the reserve either way).
   */
  reservedVramMiB: number;
  readonly reserveFloorMiB: number;
  measured: MeasuredLoad = { gpu: null, encoder: null, vramMiB: null, encoderSessions: null };
  memoryTotalMiB: number;
  temperatureCelsius: number | null = null;
  throttleActive = false;
  uuid: string | null = null;
  reportedName: string | null = null;
  /** Arrival time of the last telemetry, ms; null before the first report. */
  telemetryAt: number | null = null;
  stale = false;
  eligible = false;
  /** Owned by the placement index: where this GPU sits in it. */
  placementEntry: unknown = undefined;
  /** Links of the fleet's freshness list (oldest report first); owned by FleetState. */
  fresherNeighbour: GpuSlot | null = null;
  olderNeighbour: GpuSlot | null = null;
  inFreshnessList = false;

  constructor(node: RenderNode, index: number, model: GpuModel, reserveFloorMiB = 0) {
    this.node = node;
    this.index = index;
    this.model = model;
    this.key = `${node.id}#${index}`;
    this.memoryTotalMiB = model.vramMiB;
    this.reserveFloorMiB = reserveFloorMiB;
    this.reservedVramMiB = reserveFloorMiB;
  }

  /**
   * Effective load on each dimension (src/fleet/effective-load.ts): max(committed, measured + pending),
   * VRAM with the reserve on the committed side; an unknown measure counts as committed.
   */
  effective(): LoadVector {
    return {
      gpu: this.effectiveGpu(),
      encoder: this.effectiveEncoder(),
      vramMiB: this.effectiveVramMiB(),
      encoderSessions: this.effectiveEncoderSessions(),
    };
  }

  // One dimension of `effective()` each, allocation-free for the placement hot path.
  effectiveGpu(): number {
    return effectiveOn(this.committed.gpu, this.measured.gpu, this.pending.gpu);
  }

  effectiveEncoder(): number {
    return effectiveOn(this.committed.encoder, this.measured.encoder, this.pending.encoder);
  }

  effectiveVramMiB(): number {
    return effectiveOn(
      this.committed.vramMiB + this.reservedVramMiB,
      this.measured.vramMiB,
      this.pending.vramMiB,
    );
  }

  effectiveEncoderSessions(): number {
    return effectiveOn(
      this.committed.encoderSessions,
      this.measured.encoderSessions,
      this.pending.encoderSessions,
    );
  }

  /** A session placed here at `at`: pending until a sample settles it. */
  addPending(sessionId: string, cost: LoadVector, at: number): void {
    this.pendingSessions.set(sessionId, { at, cost });
    addLoad(this.pending, cost, 1);
  }

  /** A session left this GPU: no longer pending (a sample never showed it). */
  dropPending(sessionId: string): void {
    const entry = this.pendingSessions.get(sessionId);
    if (!entry) return;
    this.pendingSessions.delete(sessionId);
    addLoad(this.pending, entry.cost, -1);
  }

  /** Capacity under headroom, per dimension, in the units of LoadVector. */
  capacity(headroom: Headroom): LoadVector {
    return {
      gpu: capacityShare(headroom.gpu),
      encoder: capacityShare(headroom.encoder),
      vramMiB: Math.floor(headroom.vram * this.memoryTotalMiB),
      encoderSessions: this.encoderSessionCapacity(),
    };
  }

  /** Encoder sessions this GPU may run: its model's per-GPU limit, none when the limit is per host. */
  encoderSessionCapacity(): number {
    return this.model.encoderSessionScope === 'gpu' ? (this.model.encoderSessionLimit ?? Infinity) : Infinity;
  }

  /**
   * Applies one sample taken at `sampledAt` (see sampleReference): sessions placed at or before
   * `sampledAt - settleMs` are now in the measurement and leave `pending`; a GPU with no session
   * measures its VRAM reserve.
   */
  applyTelemetry(sample: GpuTelemetry, arrivedAt: number, sampledAt = arrivedAt, settleMs = 0): void {
    const ppm = (percent: number | null | undefined) =>
      isFiniteNumber(percent) ? percentToShare(percent) : null;
    this.measured = {
      gpu: ppm(sample.utilizationGpu),
      encoder: ppm(sample.utilizationEncoder),
      vramMiB: isFiniteNumber(sample.memoryUsed) ? Math.max(0, Math.round(sample.memoryUsed)) : null,
      encoderSessions: isFiniteNumber(sample.encoderSessions) ? Math.max(0, sample.encoderSessions) : null,
    };
    if (isFiniteNumber(sample.memoryTotal) && sample.memoryTotal > 0)
      this.memoryTotalMiB = sample.memoryTotal;
    this.temperatureCelsius = isFiniteNumber(sample.temperatureGpu) ? sample.temperatureGpu : null;
    this.throttleActive = sample.throttleActive === true;
    if (sample.uuid) this.uuid = sample.uuid;
    if (sample.name) this.reportedName = sample.name;
    this.telemetryAt = arrivedAt;
    this.stale = false;
    this.sampledAt = sampledAt;
    const coveredUntil = sampledAt - settleMs;
    for (const [sessionId, entry] of this.pendingSessions) {
      if (entry.at > coveredUntil) continue;
      this.pendingSessions.delete(sessionId);
      addLoad(this.pending, entry.cost, -1);
    }
    if (this.sessionIds.size === 0 && this.measured.vramMiB !== null) {
      this.reservedVramMiB = idleReserve(this.reserveFloorMiB, this.measured.vramMiB, this.memoryTotalMiB);
    }
  }
}

/** A measured value: a finite number. NaN or Infinity (a broken reading) is unknown, like a missing one. */
function isFiniteNumber(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
