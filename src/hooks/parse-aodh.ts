/**
 * Turns a `POST /v1/hooks/aodh` body (today's Aodh alarm, or the 2014 Ceilometer notification alarm whose
 * `reason_data` is the whole notification) plus the alarm URL's query into an `OrchestrationEvent`.
 * Aodh sends every field, `null` when unset: null reads as absent. A re-notification (the alarm's
 * `repeat_actions`: still firing, previous == current) is keyed per alarm, not per evaluation, so the
 * hook service lets it act at most once per cooldown.
 */
import { createHash } from 'node:crypto';
import type { AlarmInfo, OrchestrationAction, OrchestrationEvent } from './orchestration-event.js';
import { toSummaryLine } from './orchestration-event.js';
import type { NotificationMeaning } from './parse-notifications.js';
import {
  interpretNotification,
  isAutoscalingEventType,
  meaningFields,
  notificationKey,
  payloadFields,
  traitFields,
} from './parse-notifications.js';
import type { AodhAlarmBody, AodhAlarmEvent } from './schemas.js';
import {
  AodhAlarmBodySchema,
  AodhAlarmEventSchema,
  assertMatches,
  invalidField,
  isJsonObject,
  LegacyNotificationReasonSchema,
} from './schemas.js';

type Direction = 'up' | 'down';

/** The alarm body with every null read as absent. */
interface AlarmFields {
  alarm_id: string;
  alarm_name?: string;
  severity?: string;
  previous?: string;
  current?: string;
  reason?: string;
  reason_data?: Record<string, unknown>;
}

function present<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value;
}

function alarmFields(body: AodhAlarmBody): AlarmFields {
  const fields: AlarmFields = { alarm_id: body.alarm_id };
  const alarmName = present(body.alarm_name);
  const severity = present(body.severity);
  const previous = present(body.previous);
  const current = present(body.current);
  const reason = present(body.reason);
  const reasonData = present(body.reason_data);
  if (alarmName !== undefined) fields.alarm_name = alarmName;
  if (severity !== undefined) fields.severity = severity;
  if (previous !== undefined) fields.previous = previous;
  if (current !== undefined) fields.current = current;
  if (reason !== undefined) fields.reason = reason;
  if (reasonData !== undefined) fields.reason_data = reasonData;
  return fields;
}

function stateOf(value: string | undefined): string {
  return value?.trim().toLowerCase() ?? '';
}

/** What the alarm is about, before the alarm's state and the URL's direction decide the action. */
interface AlarmSubject {
  idempotencyKey: string;
  eventType: string;
  /** Present when the alarm carries a notification or event the VCA understands on its own. */
  meaning?: NotificationMeaning;
  label: string;
  /** For an alarm on no notification: the key of its re-notification cooldown. */
  cooldownKey?: string;
}

export function parseAodhAlarm(raw: unknown, query: URLSearchParams): OrchestrationEvent {
  if (!isJsonObject(raw)) throw invalidField('body', 'the Aodh alarm body must be a JSON object');
  assertMatches(AodhAlarmBodySchema, raw, '', 'Aodh alarm body');
  const body = alarmFields(raw);
  const direction = readDirection(query);
  const alarm = alarmInfo(body);
  const subject = readSubject(body);
  const { action, description } = decideAction(body, subject, direction);

  const transition = `${body.previous ?? 'unknown'} -> ${body.current ?? 'unknown'}`;
  const severity = body.severity === undefined ? '' : `, ${body.severity}`;
  const event: OrchestrationEvent = {
    idempotencyKey: subject.idempotencyKey,
    source: 'aodh',
    eventType: subject.eventType,
    ...(subject.meaning === undefined ? { action } : { ...meaningFields(subject.meaning), action }),
    alarm,
    ...(subject.cooldownKey === undefined || stateOf(body.current) !== 'alarm'
      ? {}
      : {
          alarmCooldown: {
            key: subject.cooldownKey,
            repeat: stateOf(body.previous) === stateOf(body.current),
          },
        }),
    summary: toSummaryLine(
      `${subject.label} ${body.alarm_name ?? body.alarm_id} (${transition}${severity}${direction === undefined ? '' : `, action=${direction.toUpperCase()}`}): ${description}`,
    ),
  };
  return event;
}

/** `?action=UP` / `?action=DOWN`, any case; anything else is a misconfigured alarm URL. */
function readDirection(query: URLSearchParams): Direction | undefined {
  const values = query.getAll('action').map((value) => value.trim().toLowerCase());
  if (values.length === 0) return undefined;
  const directions = new Set(values);
  const [only] = directions;
  if (directions.size > 1 || (only !== 'up' && only !== 'down')) {
    throw invalidField('query.action', 'the alarm URL may carry one action, UP or DOWN');
  }
  return only;
}

function alarmInfo(body: AlarmFields): AlarmInfo {
  const alarm: AlarmInfo = { id: body.alarm_id };
  if (body.alarm_name !== undefined) alarm.name = body.alarm_name;
  if (body.previous !== undefined) alarm.previous = body.previous;
  if (body.current !== undefined) alarm.current = body.current;
  if (body.severity !== undefined) alarm.severity = body.severity;
  return alarm;
}

function readSubject(body: AlarmFields): AlarmSubject {
  const reasonData = body.reason_data;
  if (reasonData !== undefined && !isJsonObject(reasonData)) {
    throw invalidField('reason_data', 'must be a JSON object');
  }
  const transitionKey = `aodh:${body.alarm_id}:${body.previous ?? ''}:${body.current ?? ''}`;
  // A reason can be long and holds the latest sample, so it tells evaluations apart; hashed to bound the key.
  const reasonKey = `${transitionKey}:reason:${sha256Prefix(body.reason ?? '')}`;

  if (reasonData?.type === 'event') {
    const event: unknown = reasonData.event;
    assertMatches(AodhAlarmEventSchema, event, 'reason_data.event', 'Aodh event alarm');
    const messageId = present(event.message_id);
    // When the event is a Heat autoscaling notification, the event alone decides the effect, so it is keyed
    // like the notification itself: a second alarm on it, or the same notification on the notifications
    // hook, is then a replay and cannot drain twice.
    const eventKey =
      messageId === undefined
        ? reasonKey
        : isAutoscalingEventType(event.event_type)
          ? notificationKey(messageId)
          : `${transitionKey}:event:${messageId}`;
    return {
      idempotencyKey: eventKey,
      eventType: event.event_type,
      meaning: interpretNotification(
        event.event_type,
        traitFields(eventTraits(event), 'reason_data.event.traits'),
      ),
      label: 'Aodh event alarm',
    };
  }
  if (reasonData !== undefined && reasonData.type === undefined && reasonData.event_type !== undefined) {
    assertMatches(LegacyNotificationReasonSchema, reasonData, 'reason_data', 'Ceilometer notification alarm');
    return {
      idempotencyKey: notificationKey(reasonData.message_id),
      eventType: reasonData.event_type,
      meaning: interpretNotification(
        reasonData.event_type,
        payloadFields(reasonData.payload, 'reason_data.payload'),
      ),
      label: 'Ceilometer notification alarm',
    };
  }
  const kind = typeof reasonData?.type === 'string' && reasonData.type !== '' ? reasonData.type : undefined;
  const cooldownKey = `aodh-cooldown:${body.alarm_id}`;
  const repeat = stateOf(body.previous) === 'alarm' && stateOf(body.current) === 'alarm';
  return {
    // Every evaluation of a still-firing alarm has a new reason (the latest sample): keyed by reason, each
    // would act. A re-notification is keyed per alarm instead, and held for the cooldown.
    idempotencyKey: repeat ? cooldownKey : reasonKey,
    eventType: kind === undefined ? 'alarm' : `alarm.${kind}`,
    label: repeat ? 'Aodh alarm re-notification' : 'Aodh alarm',
    cooldownKey,
  };
}

function eventTraits(event: AodhAlarmEvent): NonNullable<AodhAlarmEvent['traits']> {
  return present(event.traits) ?? [];
}

function decideAction(
  body: AlarmFields,
  subject: AlarmSubject,
  direction: Direction | undefined,
): { action: OrchestrationAction; description: string } {
  const record = (description: string) => ({ action: { kind: 'record' } as const, description });
  // Only a transition into `alarm` asks for anything; one into `ok` or `insufficient data` is the alarm
  // clearing or losing its data, and scaling on it would act on the absence of a signal.
  if (body.current?.trim().toLowerCase() !== 'alarm') {
    return record('the alarm is not firing; recorded, changes no node');
  }
  // An autoscaling notification says itself what Heat did; the URL's direction is only the operator's
  // label for the alarm and must not add a drain on top of (or against) Heat's own numbers.
  if (subject.meaning !== undefined && isAutoscalingEventType(subject.eventType)) {
    return { action: subject.meaning.action, description: subject.meaning.description };
  }
  const reason = body.reason === undefined || body.reason === '' ? '' : `${body.reason.trim()}; `;
  if (direction === 'down') {
    return {
      action: { kind: 'drain-count', count: 1 },
      description: `${reason}scale-down alarm: drain 1 node`,
    };
  }
  if (direction === 'up') {
    return record(`${reason}scale-up alarm recorded: new nodes register through the contextualization hook`);
  }
  return record(`${reason}recorded, changes no node`);
}

function sha256Prefix(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
