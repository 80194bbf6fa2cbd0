/**
 * One GPU of one node: the bin sessions are placed into. Holds what the VCA has committed to it, what
 * telemetry last measured, and whether it may take new sessions now.
 */
import type { GpuModel } from '../cost/catalog.js';
import { capacityShare, type LoadVector, percentToShare, zeroLoad } from '../cost/session-cost.js';
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

  constructor(node: RenderNode, index: number, model: GpuModel) {
    this.node = node;
    this.index = index;
    this.model = model;
    this.key = `${node.id}#${index}`;
    this.memoryTotalMiB = model.vramMiB;
  }

  /** Effective load on each dimension: max(committed, measured); an unknown measure counts as committed. */
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
    return Math.max(this.committed.gpu, this.measured.gpu ?? 0);
  }

  effectiveEncoder(): number {
    return Math.max(this.committed.encoder, this.measured.encoder ?? 0);
  }

  effectiveVramMiB(): number {
    return Math.max(this.committed.vramMiB, this.measured.vramMiB ?? 0);
  }

  effectiveEncoderSessions(): number {
    return Math.max(this.committed.encoderSessions, this.measured.encoderSessions ?? 0);
  }

  /** Capacity under headroom, per dimension, in the units of LoadVector. */
  capacity(headroom: Headroom): LoadVector {
    return {
      gpu: capacityShare(headroom.gpu),
      encoder: capacityShare(headroom.encoder),
      vramMiB: Math.floor(headroom.vram * this.memoryTotalMiB),
      encoderSessions:
        this.model.encoderSessionScope === 'gpu' ? (this.model.encoderSessionLimit ?? Infinity) : Infinity,
    };
  }

  applyTelemetry(sample: GpuTelemetry, arrivedAt: number): void {
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
  }
}

/** A measured value: a finite number. NaN or Infinity (a broken reading) is unknown, like a missing one. */
function isFiniteNumber(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
