/**
 * Turns a `POST /v1/hooks/notifications` body (a raw oslo notification, the same in oslo's v2 envelope,
 * or Ceilometer HTTP-publisher events) into `OrchestrationEvent`s, and owns what a Heat autoscaling
 * notification means, which the Aodh parser reuses for alarms that carry one.
 *
 * Total over JSON: any value anywhere is an event or a VCA_ERR_VALIDATION naming the field. So no
 * foreign value is ever turned into text by String() or a template (an object's own `toString` may be
 * anything, and a deep array overflows the stack), names are looked up only among own keys, and
 * nothing recurses into a value (test/hooks/fuzz-bodies.test.ts holds the parsers to it).
 */
import { exceedsJsonDepth, maxJsonDepth } from '../json-depth.js';
import type {
  AdjustmentType,
  CapacityChange,
  OrchestrationAction,
  OrchestrationEvent,
} from './orchestration-event.js';
import { toSummaryLine } from './orchestration-event.js';
import type { CeilometerTrait } from './schemas.js';
import {
  assertMatches,
  CeilometerEventSchema,
  invalidField,
  isJsonObject,
  joinField,
  OsloEnvelopeSchema,
  OsloNotificationSchema,
} from './schemas.js';

const MAX_EVENTS_PER_BATCH = 1000;
const AUTOSCALING_PREFIX = 'orchestration.autoscaling.';

/** A value read from a foreign body, with the dotted path to blame when it turns out to be garbage. */
export interface LocatedValue {
  value: unknown;
  field: string;
}

/** What one notification means to the VCA, before it is dressed as an `OrchestrationEvent`. */
export interface NotificationMeaning {
  group?: string;
  /** The id of the stack holding the group (Heat sends the notification about that stack). */
  stackId?: string;
  capacity?: CapacityChange;
  action: OrchestrationAction;
  /** Human text for the summary, without the source prefix. */
  description: string;
}

export function parseNotifications(body: unknown): OrchestrationEvent[] {
  if (Array.isArray(body)) {
    if (body.length === 0) throw invalidField('body', 'the event batch is empty; send at least one event');
    if (body.length > MAX_EVENTS_PER_BATCH) {
      throw invalidField('body', `send at most ${MAX_EVENTS_PER_BATCH} events per batch`);
    }
    return body.map((element, index) => parseCeilometerEvent(element, String(index)));
  }
  if (!isJsonObject(body)) {
    throw invalidField('body', 'send an oslo notification, an oslo envelope or Ceilometer events as JSON');
  }
  if (body['oslo.message'] !== undefined) return [parseOsloEnvelope(body)];
  if (body.traits !== undefined) return [parseCeilometerEvent(body, '')];
  return [parseOsloNotification(body, '')];
}

export function isAutoscalingEventType(eventType: string): boolean {
  return eventType.startsWith(AUTOSCALING_PREFIX);
}

function parseOsloEnvelope(body: Record<string, unknown>): OrchestrationEvent {
  assertMatches(OsloEnvelopeSchema, body, '', 'oslo envelope');
  // The request body's depth cap never sees inside a string: the same cap for the notification in it.
  if (exceedsJsonDepth(body['oslo.message'])) {
    throw invalidField('oslo.message', `nests arrays and objects more than ${maxJsonDepth} levels deep`);
  }
  let inner: unknown;
  try {
    inner = JSON.parse(body['oslo.message']);
  } catch {
    throw invalidField('oslo.message', 'is not valid JSON; it must hold the serialized notification');
  }
  if (!isJsonObject(inner)) throw invalidField('oslo.message', 'must hold a serialized JSON object');
  return parseOsloNotification(inner, 'oslo.message');
}

function parseOsloNotification(body: Record<string, unknown>, fieldPrefix: string): OrchestrationEvent {
  assertMatches(OsloNotificationSchema, body, fieldPrefix, 'oslo notification');
  const meaning = interpretNotification(
    body.event_type,
    payloadFields(body.payload, joinField(fieldPrefix, 'payload')),
  );
  return {
    idempotencyKey: notificationKey(body.message_id),
    source: 'oslo-notification',
    eventType: body.event_type,
    ...meaningFields(meaning),
    summary: toSummaryLine(`oslo notification ${body.event_type}: ${meaning.description}`),
  };
}

function parseCeilometerEvent(element: unknown, fieldPrefix: string): OrchestrationEvent {
  if (!isJsonObject(element))
    throw invalidField(fieldPrefix || 'body', 'each Ceilometer event must be an object');
  assertMatches(CeilometerEventSchema, element, fieldPrefix, 'Ceilometer event');
  const meaning = interpretNotification(
    element.event_type,
    traitFields(element.traits, joinField(fieldPrefix, 'traits')),
  );
  return {
    idempotencyKey: notificationKey(element.message_id),
    source: 'ceilometer-event',
    eventType: element.event_type,
    ...meaningFields(meaning),
    summary: toSummaryLine(`Ceilometer event ${element.event_type}: ${meaning.description}`),
  };
}

/**
 * Ceilometer derives an event's message_id from the notification's, and a 2014 notification alarm
 * forwards the notification whole, so one Heat notification has one key however it arrives: replaying
 * it through a second route changes nothing either.
 */
export function notificationKey(messageId: string): string {
  return `notification:${messageId}`;
}

/** Spreads a meaning into an event, leaving out what is unknown rather than setting `undefined`. */
export function meaningFields(
  meaning: NotificationMeaning,
): Pick<OrchestrationEvent, 'group' | 'stackId' | 'capacity' | 'action'> {
  const fields: Pick<OrchestrationEvent, 'group' | 'stackId' | 'capacity' | 'action'> = {
    action: meaning.action,
  };
  if (meaning.group !== undefined) fields.group = meaning.group;
  if (meaning.stackId !== undefined) fields.stackId = meaning.stackId;
  if (meaning.capacity !== undefined) fields.capacity = meaning.capacity;
  return fields;
}

/** The payload's top-level fields; a missing payload reads as empty, a non-object one is rejected. */
export function payloadFields(payload: unknown, field: string): Map<string, LocatedValue> {
  const fields = new Map<string, LocatedValue>();
  if (payload === undefined || payload === null) return fields;
  if (!isJsonObject(payload)) throw invalidField(field, 'must be a JSON object');
  for (const [name, value] of Object.entries(payload))
    fields.set(name, { value, field: joinField(field, name) });
  return fields;
}

const TRAIT_TYPE_BY_WORD: ReadonlyMap<string, number> = new Map([
  ['none', 0],
  ['string', 1],
  ['text', 1],
  ['integer', 2],
  ['int', 2],
  ['float', 3],
  ['datetime', 4],
]);

/** Ceilometer's `[name, type, value]` traits (or `{name, type, value}`) as a map, values typed. */
export function traitFields(traits: readonly CeilometerTrait[], field: string): Map<string, LocatedValue> {
  const fields = new Map<string, LocatedValue>();
  traits.forEach((trait, index) => {
    const traitField = joinField(field, String(index));
    const [name, declaredType, rawValue] = Array.isArray(trait)
      ? trait
      : [trait.name, trait.type ?? trait.dtype ?? 0, trait.value];
    const type =
      typeof declaredType === 'number' ? declaredType : TRAIT_TYPE_BY_WORD.get(declaredType.toLowerCase());
    if (type === undefined) {
      throw invalidField(
        traitField,
        `unknown trait type ${describeValue(declaredType)}; use 1 string, 2 integer, 3 float, 4 datetime`,
      );
    }
    fields.set(name, { value: typedTraitValue(rawValue, type, traitField), field: traitField });
  });
  return fields;
}

function typedTraitValue(value: unknown, type: number, field: string): unknown {
  if (value === null || value === undefined) return undefined;
  switch (type) {
    case 1:
    case 4:
      if (typeof value === 'string') return value;
      if (type === 1 && typeof value === 'number') return String(value);
      throw invalidField(
        field,
        type === 1 ? 'a string trait needs a string value' : 'a datetime trait needs a string',
      );
    case 2:
      return toInteger({ value, field });
    case 3:
      return toFiniteNumber({ value, field });
    default:
      return value;
  }
}

const INTEGER_TEXT = /^\s*[+-]?\d{1,15}\s*$/;
const DECIMAL_TEXT = /^\s*[+-]?\d{1,15}(?:\.\d{1,15})?\s*$/;

/** An integer, also from its decimal text (`"5"`, `" -1 "`); absent for null; garbage is rejected. */
export function toInteger(located: LocatedValue | undefined): number | undefined {
  const value = located?.value;
  if (located === undefined || value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value + 0;
  if (typeof value === 'string' && INTEGER_TEXT.test(value)) return Number(value) + 0;
  throw invalidField(located.field, `expected an integer, got ${describeValue(value)}`);
}

/** A finite number, also from its decimal text; absent for null; garbage (NaN, `1e999`, `"5 nodes"`) is rejected. */
export function toFiniteNumber(located: LocatedValue | undefined): number | undefined {
  const value = located?.value;
  if (located === undefined || value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value + 0;
  if (typeof value === 'string' && DECIMAL_TEXT.test(value)) return Number(value) + 0;
  throw invalidField(located.field, `expected a number, got ${describeValue(value)}`);
}

/**
 * A foreign value for an error message, bounded: strings quoted and cut, other primitives as JSON
 * writes them, arrays and objects by kind only (never String() them: see the module header).
 */
export function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value.length > 40 ? value.slice(0, 40) : value);
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (value === null) text = 'null';
  else if (Array.isArray(value)) text = `an array of ${value.length}`;
  else text = typeof value === 'object' ? 'an object' : typeof value;
  return text.length > 40 ? `${text.slice(0, 39)}\u2026` : text;
}

function toOptionalString(located: LocatedValue | undefined): string | undefined {
  const value = located?.value;
  if (located === undefined || value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  throw invalidField(located.field, `expected a string, got ${describeValue(value)}`);
}

// Heat's AWS-compatible resources spell these in CamelCase, its native ones in snake_case; both reach
// the wire depending on which resource the template used.
const ADJUSTMENT_TYPES: ReadonlyMap<string, AdjustmentType> = new Map([
  ['changeincapacity', 'change_in_capacity'],
  ['exactcapacity', 'exact_capacity'],
  ['percentchangeincapacity', 'percent_change_in_capacity'],
]);

function toAdjustmentType(located: LocatedValue | undefined): AdjustmentType | undefined {
  const text = toOptionalString(located);
  if (text === undefined || located === undefined) return undefined;
  const normalized = ADJUSTMENT_TYPES.get(text.replaceAll('_', '').toLowerCase());
  if (normalized === undefined) {
    throw invalidField(
      located.field,
      `unknown adjustment type ${describeValue(text)}; Heat sends change_in_capacity, exact_capacity or percent_change_in_capacity`,
    );
  }
  return normalized;
}

/**
 * What a notification means. Heat autoscaling notifications carry the group, its size and the
 * adjustment; every other event type is recorded, not rejected, since operators route whole topics here.
 */
export function interpretNotification(
  eventType: string,
  fields: ReadonlyMap<string, LocatedValue>,
): NotificationMeaning {
  if (!isAutoscalingEventType(eventType)) {
    return {
      action: { kind: 'record' },
      description: 'not a Heat autoscaling event; recorded, changes no node',
    };
  }
  const phase = eventType.slice(AUTOSCALING_PREFIX.length);
  const group = toOptionalString(fields.get('groupname'));
  const stackId = heatStackId(fields);
  const size = toInteger(fields.get('capacity'));
  const adjustment = toFiniteNumber(fields.get('adjustment'));
  const adjustmentType = toAdjustmentType(fields.get('adjustment_type'));
  checkAdjustment(adjustment, adjustmentType, fields);
  const sizeLocation = fields.get('capacity');
  if (size !== undefined && size < 0 && sizeLocation !== undefined) {
    throw invalidField(sizeLocation.field, 'a group size cannot be negative');
  }

  // `capacity` is the size before the resize on `start` and after it on `end`; on `error` Heat re-reads
  // the group, so it is the size the failed resize left behind.
  const capacity: CapacityChange = {};
  if (size !== undefined) {
    if (phase === 'start') capacity.before = size;
    else capacity.after = size;
  }
  if (adjustment !== undefined) capacity.adjustment = adjustment;
  if (adjustmentType !== undefined) capacity.adjustmentType = adjustmentType;

  const groupName = group ?? '(unnamed)';
  const change = describeAdjustment(adjustment, adjustmentType);
  const meaning = (action: OrchestrationAction, description: string): NotificationMeaning => {
    const result: NotificationMeaning = { action, description };
    if (group !== undefined) result.group = group;
    if (stackId !== undefined) result.stackId = stackId;
    if (Object.keys(capacity).length > 0) result.capacity = capacity;
    return result;
  };
  const record = (description: string) => meaning({ kind: 'record' }, description);

  switch (phase) {
    case 'start':
    case 'end':
    case 'error':
      return interpretResize(
        phase,
        capacity,
        group,
        change,
        meaning,
        toOptionalString(fields.get('message')),
      );
    default:
      return record(`Heat autoscaling ${phase} for group ${groupName}; recorded, changes no node`);
  }
}

/**
 * A resize of a named group is acted on (src/scaling/heat-scale-down.ts computes which members Heat
 * removes, from the sizes and the registered membership); one that names no group changes nothing, since
 * any count it implies could not be kept to the group it is about.
 */
function interpretResize(
  phase: 'start' | 'end' | 'error',
  capacity: CapacityChange,
  group: string | undefined,
  change: string,
  meaning: (action: OrchestrationAction, description: string) => NotificationMeaning,
  message: string | undefined,
): NotificationMeaning {
  const groupName = group ?? '(unnamed)';
  const size = phase === 'start' ? capacity.before : capacity.after;
  const what =
    phase === 'start'
      ? `Heat started resizing group ${groupName}${size === undefined ? '' : ` from ${size}`} ${change}`
      : phase === 'end'
        ? `Heat finished resizing group ${groupName}${size === undefined ? '' : ` to ${size}`} ${change}`
        : `Heat failed resizing group ${groupName} ${change}${size === undefined ? '' : `, size now ${size}`}${message === undefined ? '' : ` (${message})`}`;
  if (group === undefined) {
    return meaning(
      { kind: 'record' },
      `${what}; recorded: it names no group, so no node can be told its member`,
    );
  }
  const { adjustment, adjustmentType, before } = capacity;
  const grows =
    adjustment !== undefined &&
    (adjustmentType === 'exact_capacity'
      ? before !== undefined && adjustment >= before
      : adjustmentType !== undefined && adjustment >= 0);
  if (grows) {
    return meaning(
      { kind: 'record' },
      `${what}; recorded: Heat names no node addresses, the new instances register through the contextualization hook`,
    );
  }
  const effect =
    phase === 'start'
      ? 'the members Heat removes are drained at once'
      : 'the members Heat removed leave the fleet';
  return meaning({ kind: 'heat-resize', phase }, `${what}; ${effect}`);
}

function checkAdjustment(
  adjustment: number | undefined,
  adjustmentType: AdjustmentType | undefined,
  fields: ReadonlyMap<string, LocatedValue>,
): void {
  const location = fields.get('adjustment');
  if (adjustment === undefined || location === undefined) return;
  // Only a percentage may be fractional; a whole-node adjustment of 1.5 is garbage, not a rounding hint.
  if (adjustmentType !== 'percent_change_in_capacity' && !Number.isSafeInteger(adjustment)) {
    throw invalidField(location.field, `expected a whole number of nodes, got ${adjustment}`);
  }
  if (adjustmentType === 'exact_capacity' && adjustment < 0) {
    throw invalidField(location.field, 'an exact capacity cannot be negative');
  }
}

function describeAdjustment(
  adjustment: number | undefined,
  adjustmentType: AdjustmentType | undefined,
): string {
  if (adjustment === undefined) return adjustmentType === undefined ? '' : `(${adjustmentType})`;
  if (adjustmentType === 'exact_capacity') return `to exactly ${adjustment} (exact_capacity)`;
  const signed = adjustment > 0 ? `+${adjustment}` : String(adjustment);
  if (adjustmentType === 'percent_change_in_capacity') return `by ${signed}% (percent_change_in_capacity)`;
  return `by ${signed}${adjustmentType === undefined ? '' : ` (${adjustmentType})`}`;
}

/**
 * The id of the stack a Heat autoscaling notification is about: the stack that holds the group (Heat's
 * heat.engine.notification.autoscaling.send formats the group's own `stack`, the parent of its nested
 * stack): `stack_id`, or the last segment of `stack_identity` (`arn:openstack:heat::<project>:stacks/
 * <name>/<id>`, what Ceilometer's event traits usually carry). Undefined when neither is there.
 */
function heatStackId(fields: ReadonlyMap<string, LocatedValue>): string | undefined {
  const id = toOptionalString(fields.get('stack_id'));
  if (id !== undefined && id !== '') return id;
  const identity = toOptionalString(fields.get('stack_identity'));
  const match = identity === undefined ? null : /\/stacks\/[^/]+\/([^/]+)\/?$/.exec(identity);
  return match?.[1];
}
