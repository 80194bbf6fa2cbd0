/**
 * Applies normalized orchestration events to the fleet, exactly once per delivery: the idempotency key
 * is claimed in the store before anything changes, and a replay gets the first result back unchanged.
 *
 * Every effect is one all-or-nothing store step (a batch registered, a list of nodes or a count's
 * victims drained), checked whole before anything changes, also against other gateway instances. So a
 * refused event (a 4xx: unknown node, conflict, unknown GPU model) changed nothing, and its key is
 * released rather than settled: the key holds applied results only, and the next delivery under the
 * same id, corrected or not, is judged afresh instead of being answered the refusal for the whole
 * replay window. A failure of the store itself (5xx) is remembered, since it may have applied.
 */
import type { Clock } from '../clock.js';
import { isVcaError, VcaError } from '../errors.js';
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
  /**
   * Set when applying failed. A refusal (4xx, nothing changed) is answered once and not remembered; a
   * store failure (5xx) is, and replays return it. `field`: the body entry at fault, when known.
   */
  error: { code: string; status: number; detail: string; field?: string } | null;
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
      // The same event is being applied right now (here or on another instance): its outcome is not
      // known yet, so the sender is told to come back rather than handed an empty "replayed" answer.
      if ('processing' in stored) {
        throw new VcaError(
          'VCA_ERR_WEBHOOK_IN_PROGRESS',
          `Delivery ${event.idempotencyKey} is being applied now; retry in a second for its outcome`,
          { retryAfterSeconds: 1 },
        );
      }
      return { outcome: stored, replayed: true };
    }
    const outcome = this.emptyOutcome(event);
    try {
      await this.perform(event, outcome);
    } catch (error) {
      if (!isVcaError(error)) {
        // A bug, not a refusal: every effect is one all-or-nothing store step, so release the key
        // rather than hold "processing" for the whole replay window; a retry is judged afresh.
        await store.forgetWebhook(key).catch(() => undefined);
        throw error;
      }
      outcome.error = { code: error.code, status: error.status, detail: error.message };
      const field = refusalField(error, event.action);
      if (field !== undefined) outcome.error.field = field;
    }
    if (outcome.error !== null && outcome.error.status < 500) {
      // Refused before anything changed: the key must not answer a corrected delivery with this.
      await store.forgetWebhook(key);
    } else {
      await store.settleWebhook(key, outcome, idempotencyTtlMs, clock.now());
    }
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
        const nodes = await fleet.drainNodes(action.nodeIds);
        outcome.draining = nodes.map((node) => ({ id: node.id, state: node.state }));
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

/** The body entry a refusal is about: the error's own field, or the entry naming the node it names. */
function refusalField(error: VcaError, action: OrchestrationEvent['action']): string | undefined {
  const { field, nodeId } = error.extra ?? {};
  if (typeof field === 'string') return field;
  if (typeof nodeId !== 'string') return undefined;
  if (action.kind === 'drain-nodes') {
    const index = action.nodeIds.indexOf(nodeId);
    return index < 0 ? undefined : action.fields[index];
  }
  if (action.kind === 'register-nodes') {
    const index = action.nodes.findIndex((node) => node.id === nodeId);
    return index < 0 ? undefined : `nodes.${index}`;
  }
  return undefined;
}
