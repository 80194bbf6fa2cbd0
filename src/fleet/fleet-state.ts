/**
 * The in-process model of the fleet: nodes, their GPUs, lifecycle transitions, telemetry freshness
 * and committed load. It decides each GPU's eligibility for new sessions and tells a listener (the
 * placement index) whenever a GPU's load or eligibility changes, so placement never scans the fleet.
 */
import type { CatalogIndex } from '../cost/catalog.js';
import { addLoad, canHostStreams, type LoadVector } from '../cost/session-cost.js';
import { VcaError } from '../errors.js';
import { sampleReference } from './effective-load.js';
import type { GpuSlot, Headroom } from './gpu-slot.js';
import { canTransition, type NodeState } from './node-state.js';
import { type NodeRegistration, RenderNode } from './render-node.js';
import type { TelemetryReport } from './telemetry.js';

/** Told about every change that may move a GPU in or within the placement index. */
export interface GpuChangeListener {
  gpuChanged(gpu: GpuSlot): void;
  gpuRemoved(gpu: GpuSlot): void;
}

export interface FleetStateOptions {
  catalog: CatalogIndex;
  headroom: Headroom;
  temperatureMarginCelsius: number;
  /** Telemetry older than this (ms) makes a GPU ineligible. */
  staleAfterMs: number;
  /** When false, nodes are ready at registration and GPUs without telemetry are eligible. */
  requireTelemetry: boolean;
  /** A session stays pending until a sample taken this long after its placement (ms; default 0). */
  settleMs?: number;
  /** How far a probe's sample time may lag its report's arrival (ms; default 2000): sampleReference. */
  maxClockSkewMs?: number;
  /** Per GPU model name: the least VRAM (MiB) a GPU of it reserves for itself (default 0). */
  vramReserveMiB?: Readonly<Record<string, number>>;
}

export type RegisterOutcome = { node: RenderNode; created: boolean };

function sameRegistration(a: NodeRegistration, b: NodeRegistration): boolean {
  const gpuKey = (r: NodeRegistration) => r.gpus.map((g) => `${g.model}x${g.count}`).join(',');
  return a.host === b.host && a.port === b.port && a.protocol === b.protocol && gpuKey(a) === gpuKey(b);
}

export class FleetState {
  readonly options: FleetStateOptions;
  private readonly nodes = new Map<string, RenderNode>();
  private listener: GpuChangeListener | undefined;
  /** Freshness list: GPUs with live telemetry, oldest report at `stalest`. */
  private stalest: GpuSlot | null = null;
  private freshest: GpuSlot | null = null;

  constructor(options: FleetStateOptions) {
    this.options = options;
  }

  setListener(listener: GpuChangeListener): void {
    this.listener = listener;
  }

  node(id: string): RenderNode | undefined {
    return this.nodes.get(id);
  }

  requireNode(id: string): RenderNode {
    const node = this.nodes.get(id);
    if (!node) throw new VcaError('VCA_ERR_NODE_NOT_FOUND', `Node "${id}" is not registered`);
    return node;
  }

  allNodes(): IterableIterator<RenderNode> {
    return this.nodes.values();
  }

  get size(): number {
    return this.nodes.size;
  }

  /**
   * Registers a node. Re-registering the same definition is a no-op (webhook replays, probe restarts);
   * a different definition under a live id is a conflict.
   */
  register(registration: NodeRegistration, now: number): RegisterOutcome {
    this.checkRegistration(registration);
    const existing = this.nodes.get(registration.id);
    if (existing) return { node: existing, created: false };
    const models = registration.gpus.flatMap((entry) => {
      const model = this.options.catalog.model(entry.model);
      return Array.from({ length: entry.count }, () => model);
    });
    const node = new RenderNode(registration, models, now, this.options.vramReserveMiB);
    this.nodes.set(node.id, node);
    if (!this.options.requireTelemetry) this.transition(node, 'ready', now);
    else this.refreshNode(node);
    return { node, created: true };
  }

  /**
   * Throws what `register` would refuse, changing nothing: another definition under a live id (or
   * under `pending`, the same id earlier in one batch), or an unknown GPU model.
   */
  checkRegistration(registration: NodeRegistration, pending?: NodeRegistration): void {
    const known = this.nodes.get(registration.id)?.registration ?? pending;
    if (known) {
      if (!sameRegistration(known, registration)) {
        throw new VcaError(
          'VCA_ERR_NODE_CONFLICT',
          `Node "${registration.id}" is already registered with another host, port, protocol or GPU set; drain and remove it first`,
        );
      }
      return;
    }
    for (const entry of registration.gpus) this.options.catalog.model(entry.model);
  }

  /** Moves a node along its lifecycle; illegal moves are a VCA_ERR_NODE_STATE. */
  transition(node: RenderNode, to: NodeState, now: number): void {
    if (node.state === to) return;
    if (!canTransition(node.state, to)) {
      throw new VcaError('VCA_ERR_NODE_STATE', `Node "${node.id}" cannot go from ${node.state} to ${to}`);
    }
    node.state = to;
    node.stateChangedAt = now;
    if (to !== 'draining') node.drainDeadline = null;
    if (to === 'removed') {
      this.nodes.delete(node.id);
      for (const gpu of node.gpus) {
        this.unlinkFresh(gpu);
        gpu.eligible = false;
        this.listener?.gpuRemoved(gpu);
      }
      return;
    }
    this.refreshNode(node);
  }

  recordTelemetry(node: RenderNode, report: TelemetryReport, now: number): void {
    for (const sample of report.gpus) {
      if (!node.gpus[sample.index]) {
        throw new VcaError(
          'VCA_ERR_GPU_NOT_FOUND',
          `Node "${node.id}" was registered with ${node.gpus.length} GPU(s); index ${sample.index} does not exist`,
          { field: 'gpus.index' },
        );
      }
    }
    const sampledAt = sampleReference(report.ts, now, this.options.maxClockSkewMs ?? 2000);
    for (const sample of report.gpus) {
      const gpu = node.gpus[sample.index]!;
      gpu.applyTelemetry(sample, now, sampledAt, this.options.settleMs ?? 0);
      this.linkFreshest(gpu);
    }
    if (node.state === 'provisioning' || node.state === 'unhealthy') {
      if (node.gpus.some((gpu) => !gpu.stale && gpu.telemetryAt !== null))
        this.transition(node, 'ready', now);
    }
    this.refreshNode(node);
  }

  /** Marks GPUs whose telemetry is older than the stale limit; O(1) when none is. Returns nodes touched. */
  sweepStale(now: number): RenderNode[] {
    const touched = new Set<RenderNode>();
    const limit = now - this.options.staleAfterMs;
    while (this.stalest && (this.stalest.telemetryAt ?? 0) < limit) {
      const gpu = this.stalest;
      this.unlinkFresh(gpu);
      gpu.stale = true;
      touched.add(gpu.node);
    }
    for (const node of touched) {
      // A ready node whose every GPU went silent is unhealthy; its running sessions keep running.
      if (node.state === 'ready' && node.gpus.every((gpu) => gpu.stale))
        this.transition(node, 'unhealthy', now);
      else this.refreshNode(node);
    }
    return [...touched];
  }

  /** `now`: when the session is placed here; it is pending until a sample settles it. */
  commit(gpu: GpuSlot, sessionId: string, cost: LoadVector, now: number): void {
    if (gpu.sessionIds.has(sessionId))
      throw new Error(`session ${sessionId} is already committed on ${gpu.key}`);
    gpu.sessionIds.add(sessionId);
    addLoad(gpu.committed, cost, 1);
    gpu.addPending(sessionId, cost, now);
    this.refreshGpuOrNode(gpu);
  }

  /** Returns false when the session was not committed here (a second release is a no-op). */
  uncommit(gpu: GpuSlot, sessionId: string, cost: LoadVector): boolean {
    if (!gpu.sessionIds.delete(sessionId)) return false;
    addLoad(gpu.committed, cost, -1);
    gpu.dropPending(sessionId);
    this.refreshGpuOrNode(gpu);
    return true;
  }

  isEligible(gpu: GpuSlot): boolean {
    const node = gpu.node;
    if (node.state !== 'ready' || !canHostStreams(gpu.model)) return false;
    if (gpu.stale || (gpu.telemetryAt === null && this.options.requireTelemetry)) return false;
    if (gpu.throttleActive) return false;
    if (
      gpu.temperatureCelsius !== null &&
      gpu.temperatureCelsius >= gpu.model.throttleTemperatureCelsius - this.options.temperatureMarginCelsius
    ) {
      return false;
    }
    // Sessions only, without building the load vectors (this runs on every telemetry report).
    if (gpu.effectiveEncoderSessions() >= gpu.encoderSessionCapacity()) return false;
    if (
      node.systemEncoderSessionLimit !== null &&
      node.encoderSessionsInUse() >= node.systemEncoderSessionLimit
    ) {
      return false;
    }
    return true;
  }

  /** GPUs on hosts with a shared encoder limit change together; others alone. */
  private refreshGpuOrNode(gpu: GpuSlot): void {
    if (gpu.node.systemEncoderSessionLimit !== null) this.refreshNode(gpu.node);
    else this.refreshGpu(gpu);
  }

  private refreshNode(node: RenderNode): void {
    for (const gpu of node.gpus) this.refreshGpu(gpu);
  }

  private refreshGpu(gpu: GpuSlot): void {
    gpu.eligible = this.isEligible(gpu);
    this.listener?.gpuChanged(gpu);
  }

  /**
   * Links `gpu` (its telemetryAt just set) in report-time order: at the fresh end, O(1), unless the
   * clock stepped back; then behind the newer reports, so sweepStale (which stops at the first fresh
   * one from the stale end) still finds it, as the Redis store's fresh zset does.
   */
  private linkFreshest(gpu: GpuSlot): void {
    this.unlinkFresh(gpu);
    const at = gpu.telemetryAt ?? 0;
    let older = this.freshest;
    let fresher: GpuSlot | null = null;
    while (older && (older.telemetryAt ?? 0) > at) {
      fresher = older;
      older = older.olderNeighbour;
    }
    gpu.olderNeighbour = older;
    gpu.fresherNeighbour = fresher;
    if (older) older.fresherNeighbour = gpu;
    else this.stalest = gpu;
    if (fresher) fresher.olderNeighbour = gpu;
    else this.freshest = gpu;
    gpu.inFreshnessList = true;
  }

  private unlinkFresh(gpu: GpuSlot): void {
    if (!gpu.inFreshnessList) return;
    if (gpu.olderNeighbour) gpu.olderNeighbour.fresherNeighbour = gpu.fresherNeighbour;
    else this.stalest = gpu.fresherNeighbour;
    if (gpu.fresherNeighbour) gpu.fresherNeighbour.olderNeighbour = gpu.olderNeighbour;
    else this.freshest = gpu.olderNeighbour;
    gpu.olderNeighbour = null;
    gpu.fresherNeighbour = null;
    gpu.inFreshnessList = false;
  }
}
