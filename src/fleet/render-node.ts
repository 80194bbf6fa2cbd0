/** A rendering node: its address, labels, lifecycle state and GPUs. */
import type { GpuModel } from '../cost/catalog.js';
import { GpuSlot } from './gpu-slot.js';
import type { NodeState } from './node-state.js';
import type { OrchestratorMembership } from './orchestrator-membership.js';

export interface NodeRegistration {
  id: string;
  host: string;
  port: number;
  protocol: string;
  gpus: ReadonlyArray<{ model: string; count: number }>;
  labels?: Readonly<Record<string, string>>;
  group?: string;
  /** The orchestrator group and member this node is, when its registration said so. */
  orchestrator?: OrchestratorMembership;
}

export class RenderNode {
  readonly id: string;
  readonly registration: NodeRegistration;
  readonly labels: Readonly<Record<string, string>>;
  readonly gpus: GpuSlot[];
  state: NodeState = 'provisioning';
  stateChangedAt: number;
  readonly registeredAt: number;
  /** When a draining node's remaining sessions are told to migrate, ms; null when not draining. */
  drainDeadline: number | null = null;
  /** Encoder sessions shared by all GPUs of the host (GeForce driver limit), or null. */
  readonly systemEncoderSessionLimit: number | null;

  /** `vramReserveMiB`: per model name, the VRAM floor each GPU of it reserves for itself. */
  constructor(
    registration: NodeRegistration,
    models: readonly GpuModel[],
    now: number,
    vramReserveMiB: Readonly<Record<string, number>> = {},
  ) {
    this.id = registration.id;
    this.registration = registration;
    this.labels = { ...(registration.labels ?? {}) };
    this.registeredAt = now;
    this.stateChangedAt = now;
    this.gpus = models.map(
      (model, index) => new GpuSlot(this, index, model, reserveFloor(vramReserveMiB, model.name)),
    );
    const systemLimits = models
      .filter((model) => model.encoderSessionScope === 'system' && model.encoderSessionLimit !== null)
      .map((model) => model.encoderSessionLimit as number);
    this.systemEncoderSessionLimit = systemLimits.length > 0 ? Math.min(...systemLimits) : null;
  }

  /** Encoder sessions in use on the whole host: per GPU the larger of committed and measured. */
  encoderSessionsInUse(): number {
    let total = 0;
    for (const gpu of this.gpus) total += gpu.effectiveEncoderSessions();
    return total;
  }

  sessionCount(): number {
    let total = 0;
    for (const gpu of this.gpus) total += gpu.sessionIds.size;
    return total;
  }
}

/** The configured VRAM floor of a model (own properties only: a model could be named "constructor"). */
export function reserveFloor(vramReserveMiB: Readonly<Record<string, number>>, model: string): number {
  return Object.hasOwn(vramReserveMiB, model) ? (vramReserveMiB[model] ?? 0) : 0;
}
