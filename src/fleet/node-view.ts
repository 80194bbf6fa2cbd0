/** Serializable snapshots of in-process cluster objects, the shape every store returns. */

import type { GpuView, NodeView, TelemetryGpu } from '../state/state-store.js';
import type { GpuSlot, Headroom } from './gpu-slot.js';
import type { RenderNode } from './render-node.js';

export function gpuView(gpu: GpuSlot, headroom: Headroom): GpuView {
  return {
    index: gpu.index,
    model: gpu.model.name,
    uuid: gpu.uuid,
    name: gpu.reportedName,
    eligible: gpu.eligible,
    stale: gpu.stale,
    telemetryAt: gpu.telemetryAt,
    temperatureCelsius: gpu.temperatureCelsius,
    throttleActive: gpu.throttleActive,
    memoryTotalMiB: gpu.memoryTotalMiB,
    committed: { ...gpu.committed },
    measured: { ...gpu.measured },
    pending: { ...gpu.pending },
    reservedVramMiB: gpu.reservedVramMiB,
    sampledAt: gpu.sampledAt,
    effective: gpu.effective(),
    capacity: gpu.capacity(headroom),
    sessions: gpu.sessionIds.size,
  };
}

export function nodeView(node: RenderNode, headroom: Headroom): NodeView {
  const registration = node.registration;
  const view: NodeView = {
    id: node.id,
    host: registration.host,
    port: registration.port,
    protocol: registration.protocol,
    group: registration.group ?? null,
    labels: { ...node.labels },
    state: node.state,
    stateChangedAt: node.stateChangedAt,
    registeredAt: node.registeredAt,
    drainDeadline: node.drainDeadline,
    sessions: node.sessionCount(),
    encoderSessionLimit: node.systemEncoderSessionLimit,
    gpus: node.gpus.map((gpu) => gpuView(gpu, headroom)),
  };
  if (registration.orchestrator !== undefined) view.orchestrator = { ...registration.orchestrator };
  return view;
}

/**
 * The part of a GPU a telemetry report's brief answer carries (StateStore.reportTelemetry), from a
 * GpuView or a GpuSlot (`model`: its model's name), values copied.
 */
export function telemetryGpuOf(view: Omit<TelemetryGpu, 'model'>, model: string): TelemetryGpu {
  return {
    index: view.index,
    model,
    eligible: view.eligible,
    stale: view.stale,
    throttleActive: view.throttleActive,
    memoryTotalMiB: view.memoryTotalMiB,
    measured: { ...view.measured },
    reservedVramMiB: view.reservedVramMiB,
    pending: { encoderSessions: view.pending.encoderSessions },
  };
}
