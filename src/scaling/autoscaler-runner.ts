/**
 * Runs the autoscaler policy on a schedule: reads the fleet and the queue, decides, and acts — a
 * scale-up becomes an outbound signal; a scale-down drains the victim first and signals once it is
 * drained (the orchestrator then removes an empty node, never one with gamers on it). In a Heat group
 * the victim is the member Heat removes next, so the node Heat deletes is the one that was drained.
 */
import type { Clock } from '../clock.js';
import type { AutoscalerConfig } from '../config/schema.js';
import type { CatalogIndex } from '../cost/catalog.js';
import type { NodeView, StateStore } from '../state/state-store.js';
import { type AutoscalerDecision, decideScaling } from './autoscaler-policy.js';
import type { FleetService } from './fleet-service.js';
import { HeatScaleDown } from './heat-scale-down.js';

/** How long a member drained ahead of Heat counts as a member while Heat's removal has not come. */
const drainedAheadMemoryMs = 60 * 60 * 1000;

export interface ScaleSignal {
  event: 'scale-up' | 'scale-down';
  count: number;
  nodes?: Array<{ id: string; host: string; group: string | null }>;
  reason: string;
}

export interface AutoscalerRunnerOptions {
  store: StateStore;
  fleet: FleetService;
  catalog: CatalogIndex;
  config: AutoscalerConfig;
  clock: Clock;
  signal: (signal: ScaleSignal) => void;
}

export class AutoscalerRunner {
  private readonly options: AutoscalerRunnerOptions;
  private lastScaleUpAt: number | null = null;
  private lastScaleDownAt: number | null = null;
  private lastDecision: (AutoscalerDecision & { at: number }) | null = null;
  /** Nodes this autoscaler drained; their drained event becomes the scale-down signal. */
  private readonly victims = new Set<string>();
  private readonly heat: HeatScaleDown;

  constructor(options: AutoscalerRunnerOptions) {
    this.options = options;
    this.heat = new HeatScaleDown({
      store: options.store,
      fleet: options.fleet,
      clock: options.clock,
      memoryTtlMs: drainedAheadMemoryMs,
    });
  }

  view() {
    return {
      enabled: this.options.config.enabled,
      lastDecision: this.lastDecision,
      lastScaleUpAt: this.lastScaleUpAt,
      lastScaleDownAt: this.lastScaleDownAt,
      drainingVictims: [...this.victims],
    };
  }

  async runOnce(): Promise<AutoscalerDecision> {
    const { store, config, clock } = this.options;
    const now = clock.now();
    const nodes = await store.listNodes();
    const decision = decideScaling({
      now,
      nodes,
      queueLength: (await store.queuePositions()).size,
      lastScaleUpAt: this.lastScaleUpAt,
      lastScaleDownAt: this.lastScaleDownAt,
      config,
      model: (name) => this.options.catalog.findModel(name),
    });
    this.lastDecision = { ...decision, at: now };
    if (decision.action === 'scale-up') {
      this.lastScaleUpAt = now;
      this.options.signal({ event: 'scale-up', count: decision.count, reason: decision.reason });
    } else if (decision.action === 'scale-down') {
      this.lastScaleDownAt = now;
      for (const id of decision.nodeIds) {
        this.victims.add(id);
        // Heat removes this member on the signal; until its end notification, it counts as a member
        // although its node leaves the store once empty (heat-scale-down.ts).
        const node = nodes.find((entry) => entry.id === id);
        if (node?.orchestrator !== undefined) await this.heat.noteDrainedAhead(node);
        await this.options.fleet.drainNode(id);
      }
    }
    return decision;
  }

  /** Called when any node is drained: if it was our victim, tell the orchestrator to remove it. */
  nodeDrained(node: NodeView): void {
    if (!this.victims.delete(node.id)) return;
    this.options.signal({
      event: 'scale-down',
      count: 1,
      nodes: [{ id: node.id, host: node.host, group: node.group }],
      reason: 'drained by the autoscaler',
    });
  }
}
