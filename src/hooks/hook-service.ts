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
import { type HeatResize, HeatScaleDown } from '../scaling/heat-scale-down.js';
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
  /** A Heat resize: the nodes Heat removes (start) or removed (end), in Heat's order. */
  victims: string[];
  /** Nodes removed from the fleet (Heat's end), sessions moved off them, and sessions lost with them. */
  removed: string[];
  migrated: number;
  lost: number;
  /** Nodes a Heat start drained that Heat kept after all: ready again. */
  restored: string[];
  /**
   * How much of the autoscaling facts (group, size, adjustment, its type) the delivery carried: a
   * richer delivery of the same message may act where this one only recorded.
   */
  information: number;
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
  /**
   * An alarm re-notification acts at most once per this many ms per alarm (default 300 000): its key
   * lives this long, in the store, so every instance sharing it agrees (`OrchestrationEvent.alarmCooldown`).
   */
  alarmRepeatCooldownMs?: number;
  /** The Heat scale-down flow; built on the same store and fleet when not given. */
  heatScaleDown?: HeatScaleDown;
}

const processing = { processing: true } as const;

export class HookService {
  private readonly options: HookServiceOptions;
  private readonly heat: HeatScaleDown;

  constructor(options: HookServiceOptions) {
    this.options = options;
    this.heat =
      options.heatScaleDown ??
      new HeatScaleDown({
        store: options.store,
        fleet: options.fleet,
        clock: options.clock,
        memoryTtlMs: options.idempotencyTtlMs,
      });
  }

  /**
   * Claims the delivery key, then applies. A replay is answered the first outcome, except that a
   * delivery carrying more of the facts than one that only recorded (one Heat message reaching the VCA
   * first as a Ceilometer event without traits, then through oslo with its adjustment) is applied: it
   * claims a second key for its level of information, so replays at that level still act once, here
   * and on every instance sharing the store.
   */
  async apply(event: OrchestrationEvent): Promise<AppliedHook> {
    const key = `hook:${event.idempotencyKey}`;
    const information = informationOf(event);
    const claim = await this.claim(key, event);
    if (claim.kind === 'replay') {
      const stored = claim.outcome;
      if (!(changedNothing(stored) && information > stored.information && event.action.kind !== 'record')) {
        return { outcome: stored, replayed: true };
      }
      const richer = `${key}#information-${information}`;
      const second = await this.claim(richer, event);
      if (second.kind === 'replay') return { outcome: second.outcome, replayed: true };
      return { outcome: await this.applyClaimed(event, richer, key), replayed: false };
    }
    return { outcome: await this.applyClaimed(event, key), replayed: false };
  }

  private async claim(
    key: string,
    event: OrchestrationEvent,
  ): Promise<{ kind: 'first' } | { kind: 'replay'; outcome: HookOutcome }> {
    const { store, clock } = this.options;
    const claim = await store.rememberWebhook(key, processing, this.memoryTtlMs(event), clock.now());
    if (claim.first) return { kind: 'first' };
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
    return { kind: 'replay', outcome: { ...stored, information: stored.information ?? 0 } };
  }

  /** Applies an event whose `key` this call claimed; `alsoSettle`: the poorer key it outranks. */
  private async applyClaimed(
    event: OrchestrationEvent,
    key: string,
    alsoSettle?: string,
  ): Promise<HookOutcome> {
    const { store, clock } = this.options;
    const idempotencyTtlMs = this.memoryTtlMs(event);
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
      // Later replays of the poorer delivery get what the richer one did.
      if (alsoSettle !== undefined)
        await store.settleWebhook(alsoSettle, outcome, idempotencyTtlMs, clock.now());
      await this.startAlarmCooldown(event, outcome);
    }
    return outcome;
  }

  /** How long a delivery key is remembered: an alarm re-notification's only for its cooldown. */
  private memoryTtlMs(event: OrchestrationEvent): number {
    return event.alarmCooldown?.repeat ? this.alarmRepeatCooldownMs() : this.options.idempotencyTtlMs;
  }

  private alarmRepeatCooldownMs(): number {
    return this.options.alarmRepeatCooldownMs ?? 300_000;
  }

  /** A transition into the alarm state that acted holds the alarm's re-notifications for the cooldown. */
  private async startAlarmCooldown(event: OrchestrationEvent, outcome: HookOutcome): Promise<void> {
    const cooldown = event.alarmCooldown;
    if (cooldown === undefined || cooldown.repeat || event.action.kind === 'record' || outcome.error !== null)
      return;
    const { store, clock } = this.options;
    await store.settleWebhook(`hook:${cooldown.key}`, outcome, this.alarmRepeatCooldownMs(), clock.now());
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
        const nodes = await fleet.drainCount(action.count, undefined, event.group);
        outcome.draining = nodes.map((node) => ({ id: node.id, state: node.state }));
        outcome.shortfall = action.count - nodes.length;
        return;
      }
      case 'heat-resize': {
        if (event.group === undefined) return;
        const capacity = event.capacity ?? {};
        const resize: HeatResize = { group: event.group, phase: action.phase };
        if (event.stackId !== undefined) resize.stackId = event.stackId;
        if (capacity.before !== undefined) resize.before = capacity.before;
        if (capacity.after !== undefined) resize.after = capacity.after;
        if (capacity.adjustment !== undefined) resize.adjustment = capacity.adjustment;
        if (capacity.adjustmentType !== undefined) resize.adjustmentType = capacity.adjustmentType;
        const result = await this.heat.apply(resize);
        outcome.victims = result.victims;
        outcome.draining = result.draining;
        outcome.removed = result.removed;
        outcome.migrated = result.migrated;
        outcome.lost = result.lost;
        outcome.restored = result.restored;
        outcome.shortfall = result.shortfall;
        if (result.note !== null) outcome.summary = `${outcome.summary} (${result.note})`;
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
      victims: [],
      removed: [],
      migrated: 0,
      lost: 0,
      restored: [],
      information: informationOf(event),
      error: null,
    };
  }
}

/** How many of the autoscaling facts an event carries: group, a size, the adjustment, its type. */
function informationOf(event: OrchestrationEvent): number {
  const capacity = event.capacity ?? {};
  return (
    (event.group === undefined ? 0 : 1) +
    (capacity.before === undefined && capacity.after === undefined ? 0 : 1) +
    (capacity.adjustment === undefined ? 0 : 1) +
    (capacity.adjustmentType === undefined ? 0 : 1)
  );
}

/** An outcome that changed no node: a delivery that only recorded, or one that found nothing to do. */
function changedNothing(outcome: HookOutcome): boolean {
  return (
    outcome.error === null &&
    outcome.registered.length === 0 &&
    outcome.draining.length === 0 &&
    (outcome.removed ?? []).length === 0 &&
    (outcome.restored ?? []).length === 0
  );
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
