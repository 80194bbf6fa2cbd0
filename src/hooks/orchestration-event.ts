/** The one normalized shape every orchestrator webhook body becomes, whatever format it arrived in. */
import type { NodeRegistration } from './schemas.js';

export type AdjustmentType = 'change_in_capacity' | 'exact_capacity' | 'percent_change_in_capacity';

/** What the VCA does about an event. `record` is logged and stored for replay checks; it changes no node. */
export type OrchestrationAction =
  | { kind: 'register-nodes'; nodes: NodeRegistration[] }
  | {
      kind: 'drain-nodes';
      nodeIds: string[];
      /** Where the body names each node (`nodes.<index>` of its first mention), for a refusal's `field`. */
      fields: string[];
    }
  | { kind: 'drain-count'; count: number }
  /**
   * A Heat autoscaling notification of a named group (src/scaling/heat-scale-down.ts): on `start` the
   * members Heat removes are drained at once; on `end` (or `error`) the members gone are removed.
   */
  | { kind: 'heat-resize'; phase: 'start' | 'end' | 'error' }
  | { kind: 'record' };

export type OrchestrationSource = 'contextualize' | 'aodh' | 'oslo-notification' | 'ceilometer-event';

export interface CapacityChange {
  /** Group size before the resize (Heat reports it on `orchestration.autoscaling.start`). */
  before?: number;
  /** Group size after the resize (Heat reports it on `.end`, and the current size on `.error`). */
  after?: number;
  adjustment?: number;
  adjustmentType?: AdjustmentType;
}

export interface AlarmInfo {
  name?: string;
  id: string;
  previous?: string;
  current?: string;
  severity?: string;
}

export interface OrchestrationEvent {
  /**
   * Stable across replays of the same delivery, different between deliveries: the contextualize
   * eventId; the notification's message_id (oslo, Ceilometer event, 2014 notification alarm and Aodh
   * event alarms on a Heat autoscaling event all share it for one Heat notification, so one resize
   * drains once however many routes report it); for other Aodh alarms, alarm id, transition and event
   * message_id or reason.
   */
  idempotencyKey: string;
  source: OrchestrationSource;
  /** e.g. `scale-up`, `orchestration.autoscaling.end`, `alarm.threshold`. */
  eventType: string;
  /** Autoscaling group name, when the body names one. */
  group?: string;
  /** Heat: the id of the stack holding the group, when the notification carries it. */
  stackId?: string;
  capacity?: CapacityChange;
  alarm?: AlarmInfo;
  action: OrchestrationAction;
  /**
   * A firing alarm (not one on a notification): its re-notifications (Aodh `repeat_actions`, same alarm
   * still firing, `repeat`) act at most once per cooldown per alarm, and a transition into the alarm
   * state starts that cooldown. `key` names the alarm's cooldown in the store's webhook memory.
   */
  alarmCooldown?: { key: string; repeat: boolean };
  /** One human line for logs; never contains control characters. */
  summary: string;
}

const CONTROL_CHARACTERS = /[\p{Cc}\u2028\u2029]+/gu;
const SUMMARY_MAX_LENGTH = 400;

/** Makes untrusted text safe for a one-line log summary: control characters folded, length bounded. */
export function toSummaryLine(text: string): string {
  const flat = text.replace(CONTROL_CHARACTERS, ' ').replace(/ {2,}/g, ' ').trim();
  return flat.length > SUMMARY_MAX_LENGTH ? `${flat.slice(0, SUMMARY_MAX_LENGTH - 1)}\u2026` : flat;
}

/** Lists ids for a summary, at most a handful, so one huge batch does not flood a log line. */
export function listForSummary(ids: readonly string[], shown = 5): string {
  const head = ids.slice(0, shown).join(', ');
  return ids.length > shown ? `${head} and ${ids.length - shown} more` : head;
}

/** `1 node`, `3 nodes`. */
export function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
