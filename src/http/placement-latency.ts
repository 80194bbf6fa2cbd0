/**
 * The gateway side of latency-aware placement, fed every domain event (local and relayed): keeps the
 * region directory current, tells WebSocket clients of queued sessions when their latency cap relaxes
 * (`queued {..., maxLatencyMs}`), and records `vca_placement_latency_ms` and
 * `vca_latency_policy_relaxations_total` for what this instance decided.
 */
import type { RegionDirectory } from '../fleet/region-directory.js';
import type { VcaMetrics } from '../metrics/vca-metrics.js';
import { type LatencyRules, latencyPlan } from '../placement/latency-policy.js';
import type { VcaEvent } from '../sessions/events.js';
import { type LatencyCapAt, LatencyWatch } from '../sessions/latency-watch.js';
import { reportedLatency } from '../sessions/session-request.js';
import type { PlaySockets } from './play-socket.js';

/** The cap in force for a session at an instant under `rules` (none for a session without latencies). */
export function latencyCapAt(rules: LatencyRules): LatencyCapAt {
  return (session, at) => {
    const plan = latencyPlan(session, at, rules);
    return { maxLatencyMs: plan?.maxLatencyMs ?? null, relaxesAt: plan?.relaxesAt ?? null };
  };
}

export interface PlacementLatencyOptions {
  rules: LatencyRules;
  regions: RegionDirectory;
  metrics: VcaMetrics;
  play: PlaySockets;
  now: () => number;
  onError: (error: unknown) => void;
}

export class PlacementLatency {
  private readonly options: PlacementLatencyOptions;
  private readonly watch: LatencyWatch;

  constructor(options: PlacementLatencyOptions) {
    this.options = options;
    this.watch = new LatencyWatch(latencyCapAt(options.rules));
  }

  /** `local`: the event was decided by this instance (metrics count only those). */
  handleEvent(event: VcaEvent, local: boolean): void {
    const { regions, metrics, play, now } = this.options;
    regions.handleEvent(event);
    for (const relaxation of this.watch.observe(event, now(), local)) {
      if (relaxation.local) metrics.latencyPolicyRelaxations.inc(relaxation.steps);
      if (relaxation.queued) play.announceLatencyCap(relaxation.sessionId, relaxation.maxLatencyMs);
    }
    if (local && event.type === 'session-assigned' && event.via !== 'migration') {
      const { latencies, placement } = event.session;
      if (latencies === undefined || placement === null) return;
      regions
        .regionOf(placement.nodeId)
        .then((region) => {
          const latencyMs = region === null ? undefined : reportedLatency(latencies, region);
          if (latencyMs !== undefined) metrics.placementLatencyMs.observe(latencyMs);
        })
        .catch(this.options.onError);
    }
  }
}
