/**
 * Applies normalized orchestration events to the fleet, exactly once per delivery: the idempotency key
 * is claimed in the store before anything changes, and a replay gets the first result back unchanged.
 */
import type { Clock } from '../clock.js';
import { isVcaError } from '../errors.js';
import type { FleetService } from '../scaling/fleet-service.js';
import type { StateStore } from '../state/state-store.js';
import type { OrchestrationEvent } from './orchestration-event.js';

export interface HookOutcome {
  eventId: string;
  source: OrchestrationEvent['source'];
  eventType: string;
  action: OrchestrationEvent['action']['kind'];
  summary: string;
  group: string | null;
  capacity: OrchestrationEvent['capacity'] | null;
  /** Nodes registered (or already known: `created: false`). */
  registered: Array<{ id: string; state: string; created: boolean }>;
  /** Nodes put into draining (named, or picked for a count). */
  draining: Array<{ id: string; state: string }>;
  /** For a drain-count the fleet could not fully satisfy. */
  shortfall: number;
  /** Set when applying failed; replays return the same failure. */
  error: { code: string; status: number; detail: string } | null;
}

export interface AppliedHook {
  outcome: HookOutcome;
  replayed: boolean;
}

export interface HookServiceOptions {
  store: StateStore;
  fleet: FleetService;
  clock: Clock;
  idempotencyTtlMs: number;
}

const processing = { processing: true } as const;

export class HookService {
  private readonly options: HookServiceOptions;

  constructor(options: HookServiceOptions) {
    this.options = options;
  }

  async apply(event: OrchestrationEvent): Promise<AppliedHook> {
    const { store, clock, idempotencyTtlMs } = this.options;
    const key = `hook:${event.idempotencyKey}`;
    const claim = await store.rememberWebhook(key, processing, idempotencyTtlMs, clock.now());
    if (!claim.first) {
      const stored = claim.result as HookOutcome | typeof processing;
      // A concurrent delivery of the same event is still being applied: report it as a replay of it.
      const outcome = 'processing' in stored ? { ...this.emptyOutcome(event) } : stored;
      return { outcome, replayed: true };
    }
    const outcome = this.emptyOutcome(event);
    try {
      await this.perform(event, outcome);
    } catch (error) {
      if (!isVcaError(error)) throw error;
      outcome.error = { code: error.code, status: error.status, detail: error.message };
    }
    await store.settleWebhook(key, outcome, idempotencyTtlMs, clock.now());
    return { outcome, replayed: false };
  }

  private async perform(event: OrchestrationEvent, outcome: HookOutcome): Promise<void> {
    const { fleet } = this.options;
    const action = event.action;
    switch (action.kind) {
      case 'register-nodes': {
        const results = await fleet.registerNodes(
          action.nodes.map((node) => ({ ...node, group: event.group ?? undefined })),
        );
        outcome.registered = results.map(({ node, created }) => ({
          id: node.id,
          state: node.state,
          created,
        }));
        return;
      }
      case 'drain-nodes': {
        for (const id of action.nodeIds) {
          const node = await fleet.drainNode(id);
          outcome.draining.push({ id: node.id, state: node.state });
        }
        return;
      }
      case 'drain-count': {
        const nodes = await fleet.drainCount(action.count);
        outcome.draining = nodes.map((node) => ({ id: node.id, state: node.state }));
        outcome.shortfall = action.count - nodes.length;
        return;
      }
      case 'record':
        return;
    }
  }

  private emptyOutcome(event: OrchestrationEvent): HookOutcome {
    return {
      eventId: event.idempotencyKey,
      source: event.source,
      eventType: event.eventType,
      action: event.action.kind,
      summary: event.summary,
      group: event.group ?? null,
      capacity: event.capacity ?? null,
      registered: [],
      draining: [],
      shortfall: 0,
      error: null,
    };
  }
}
