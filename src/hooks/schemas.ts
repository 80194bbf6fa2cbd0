/**
 * The TypeBox schemas of every orchestrator webhook body (the VCA's own contextualization format, Aodh
 * alarms, oslo notifications, Ceilometer events) and the one helper that checks a value against them
 * and turns the first failure into a `VCA_ERR_VALIDATION` naming the field.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { VcaError } from '../errors.js';

// ---------------------------------------------------------------------------------------------------
// The VCA's own contextualization format. It is ours, so unknown top-level fields are rejected: a typo
// in an optional field must fail loudly instead of being silently dropped.
// ---------------------------------------------------------------------------------------------------

export const NODE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';

// RFC 1123 host names, dotted quads (re-checked as real IPv4 by the parser, since `999.1.1.1` is also a
// valid host name syntactically) and bare IPv6 literals (also re-checked).
const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
export const HOST_PATTERN = `^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*\\.?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$`;

export const NodeIdSchema = Type.String({ pattern: NODE_ID_PATTERN, description: 'Rendering node id' });

export const GpuSpecSchema = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 128, description: 'GPU model as the catalog names it' }),
    count: Type.Integer({ minimum: 1, maximum: 16 }),
  },
  { additionalProperties: false },
);

/**
 * Labels, the one definition: a node's (registration) and a session's (the labels it must find on its
 * node: POST /v1/sessions and the play socket's `request`, src/http/api-schemas.ts). Names of 1 to 63
 * letters, digits and `._/-`, values up to 256 characters, at most 32; a name outside the pattern is
 * refused (additionalProperties), never silently kept.
 */
export const NodeLabelsSchema = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9._/-]{1,63}$' }),
  Type.String({ maxLength: 256 }),
  { maxProperties: 32, additionalProperties: false },
);

// Heat names (stack ids, resource names, server ids): printable, no control characters, bounded.
const OrchestratorName = (description: string) =>
  Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description });

/** ISO 8601 date-time as Heat writes `creation_time` (`2026-11-19T10:35:59Z`, offsets and fractions allowed). */
export const ISO_DATE_TIME_PATTERN =
  '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,9})?(?:Z|[+-]\\d{2}:?\\d{2})?$';

/**
 * Which Heat group and member a node is (src/fleet/orchestrator-membership.ts): what the VCA needs to
 * know which nodes a Heat scale-down removes, in Heat's order.
 */
export const OrchestratorMembershipSchema = Type.Object(
  {
    kind: Type.Literal('heat'),
    stackId: OrchestratorName('Id of the stack the group is reported against (its nested stack id)'),
    group: OrchestratorName('Group resource name (or the groupname Heat notifications carry)'),
    member: OrchestratorName("Member resource name in the group's nested stack"),
    serverId: Type.Optional(OrchestratorName('Nova server id of the member')),
    createdAt: Type.String({
      maxLength: 64,
      pattern: ISO_DATE_TIME_PATTERN,
      description: 'Creation time of the member resource, ISO 8601',
    }),
    failed: Type.Optional(Type.Boolean({ description: 'The member resource is in a FAILED state' })),
  },
  { additionalProperties: false },
);

export const NodeRegistrationSchema = Type.Object(
  {
    id: NodeIdSchema,
    host: Type.String({
      minLength: 1,
      maxLength: 253,
      pattern: HOST_PATTERN,
      description: 'Host name or IP',
    }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Type.String({
      minLength: 1,
      maxLength: 32,
      description: 'Remote display protocol, e.g. turbovnc, webrtc, moonlight',
    }),
    gpus: Type.Array(GpuSpecSchema, { minItems: 1, maxItems: 16 }),
    labels: Type.Optional(NodeLabelsSchema),
    orchestrator: Type.Optional(OrchestratorMembershipSchema),
  },
  { additionalProperties: false },
);

// Only the id matters to a drain, so a reference object may carry more (an operator may send back the
// registration it used for scale-up); extra fields are ignored, not rejected.
export const NodeReferenceSchema = Type.Union([NodeIdSchema, Type.Object({ id: NodeIdSchema })]);

const contextualizeCommon = {
  eventId: Type.String({ minLength: 1, maxLength: 200, description: 'Idempotency key of this delivery' }),
  group: Type.String({ minLength: 1, maxLength: 255, description: 'Autoscaling group name' }),
};

export const ContextualizeScaleUpSchema = Type.Object(
  {
    ...contextualizeCommon,
    event: Type.Literal('scale-up'),
    nodes: Type.Array(NodeRegistrationSchema, { minItems: 1, maxItems: 100 }),
  },
  { additionalProperties: false },
);

export const ContextualizeScaleDownByNodesSchema = Type.Object(
  {
    ...contextualizeCommon,
    event: Type.Literal('scale-down'),
    nodes: Type.Array(NodeReferenceSchema, { minItems: 1, maxItems: 1000 }),
  },
  { additionalProperties: false },
);

export const ContextualizeScaleDownByCountSchema = Type.Object(
  {
    ...contextualizeCommon,
    event: Type.Literal('scale-down'),
    count: Type.Integer({ minimum: 1, maximum: 1000 }),
  },
  { additionalProperties: false },
);

export const ContextualizeScaleDownSchema = Type.Union([
  ContextualizeScaleDownByNodesSchema,
  ContextualizeScaleDownByCountSchema,
]);

export const ContextualizeBodySchema = Type.Union([ContextualizeScaleUpSchema, ContextualizeScaleDownSchema]);

export type NodeRegistration = Static<typeof NodeRegistrationSchema>;
export type OrchestratorMembershipBody = Static<typeof OrchestratorMembershipSchema>;
export type NodeReference = Static<typeof NodeReferenceSchema>;
export type ContextualizeScaleUp = Static<typeof ContextualizeScaleUpSchema>;
export type ContextualizeScaleDown = Static<typeof ContextualizeScaleDownSchema>;
export type ContextualizeBody = Static<typeof ContextualizeBodySchema>;

// ---------------------------------------------------------------------------------------------------
// Foreign formats (Aodh, oslo.messaging, Ceilometer). Their producers add fields between releases, so
// unknown fields are accepted everywhere; only what the VCA reads is constrained.
// ---------------------------------------------------------------------------------------------------

// Heat and Ceilometer sometimes send integers as strings; the parser coerces these strictly.
const IntegerLike = Type.Union([Type.Integer(), Type.String({ pattern: '^\\s*[+-]?\\d+\\s*$' })]);
const NumberLike = Type.Union([Type.Number(), Type.String({ pattern: '^\\s*[+-]?\\d+(?:\\.\\d+)?\\s*$' })]);

/** The fields of a Heat `orchestration.autoscaling.{start,end,error}` payload the VCA reads. */
export const HeatAutoscalingPayloadSchema = Type.Object({
  groupname: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  capacity: Type.Optional(Type.Union([IntegerLike, Type.Null()])),
  adjustment: Type.Optional(Type.Union([NumberLike, Type.Null()])),
  adjustment_type: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});

/** A raw oslo.messaging notification as Heat emits it. */
export const OsloNotificationSchema = Type.Object({
  event_type: Type.String({ minLength: 1, maxLength: 255 }),
  message_id: Type.String({ minLength: 1, maxLength: 255 }),
  payload: Type.Optional(Type.Unknown()),
  publisher_id: Type.Optional(Type.String()),
  priority: Type.Optional(Type.String()),
  timestamp: Type.Optional(Type.String()),
});

/** oslo.messaging's version 2 envelope: the notification serialized as a JSON string. */
export const OsloEnvelopeSchema = Type.Object({
  'oslo.version': Type.Optional(Type.String()),
  'oslo.message': Type.String({ minLength: 2, description: 'The notification, serialized as JSON' }),
});

/** Ceilometer trait types: 0 none, 1 string, 2 integer, 3 float, 4 datetime. */
export const CeilometerTraitTupleSchema = Type.Tuple([
  Type.String({ minLength: 1 }),
  Type.Integer({ minimum: 0, maximum: 4 }),
  Type.Unknown(),
]);

// The events API and some publishers spell a trait as an object, with the type as a word or a number.
export const CeilometerTraitObjectSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  type: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 4 }), Type.String()])),
  dtype: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 4 }), Type.String()])),
  value: Type.Unknown(),
});

export const CeilometerTraitSchema = Type.Union([CeilometerTraitTupleSchema, CeilometerTraitObjectSchema]);

/** One event as Ceilometer's HTTP publisher sends it (and as Aodh embeds it in an event alarm). */
export const CeilometerEventSchema = Type.Object({
  message_id: Type.String({ minLength: 1, maxLength: 255 }),
  event_type: Type.String({ minLength: 1, maxLength: 255 }),
  generated: Type.Optional(Type.String()),
  traits: Type.Array(CeilometerTraitSchema, { maxItems: 256 }),
});

export const CeilometerEventBatchSchema = Type.Array(CeilometerEventSchema, { minItems: 1, maxItems: 1000 });

/** Everything `POST /v1/hooks/notifications` accepts. */
export const NotificationsBodySchema = Type.Union([
  OsloEnvelopeSchema,
  OsloNotificationSchema,
  CeilometerEventSchema,
  CeilometerEventBatchSchema,
]);

/**
 * Aodh's REST notifier sends every alarm field, `null` when unset (aodh/notifier/rest.py builds the
 * body from the alarm whatever it holds), so each optional field also takes null, read as absent.
 */
const Nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

/** The event an Aodh event alarm carries; its message_id is optional (the reason stands in for it). */
export const AodhAlarmEventSchema = Type.Object({
  event_type: Type.String({ minLength: 1, maxLength: 255 }),
  message_id: Nullable(Type.String({ minLength: 1, maxLength: 255 })),
  traits: Nullable(Type.Array(CeilometerTraitSchema, { maxItems: 256 })),
});

/** The 2014 Ceilometer notification alarm: `reason_data` is the whole matching notification. */
export const LegacyNotificationReasonSchema = Type.Object({
  event_type: Type.String({ minLength: 1, maxLength: 255 }),
  message_id: Type.String({ minLength: 1, maxLength: 255 }),
  payload: Type.Optional(Type.Unknown()),
});

/** Today's Aodh alarm body (threshold, gnocchi_*, event, composite, ...) and the 2014 form. */
export const AodhAlarmBodySchema = Type.Object({
  alarm_id: Type.String({ minLength: 1, maxLength: 255 }),
  alarm_name: Nullable(Type.String()),
  severity: Nullable(Type.String()),
  previous: Nullable(Type.String()),
  current: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  reason_data: Nullable(Type.Record(Type.String(), Type.Unknown())),
});

export type HeatAutoscalingPayload = Static<typeof HeatAutoscalingPayloadSchema>;
export type OsloNotification = Static<typeof OsloNotificationSchema>;
export type OsloEnvelope = Static<typeof OsloEnvelopeSchema>;
export type CeilometerTrait = Static<typeof CeilometerTraitSchema>;
export type CeilometerEvent = Static<typeof CeilometerEventSchema>;
export type NotificationsBody = Static<typeof NotificationsBodySchema>;
export type AodhAlarmEvent = Static<typeof AodhAlarmEventSchema>;
export type LegacyNotificationReason = Static<typeof LegacyNotificationReasonSchema>;
export type AodhAlarmBody = Static<typeof AodhAlarmBodySchema>;

// ---------------------------------------------------------------------------------------------------

/** Joins a field prefix and a relative path: `joinField('nodes.0', 'port')` is `nodes.0.port`. */
export function joinField(prefix: string, path: string): string {
  if (prefix === '') return path;
  if (path === '') return prefix;
  return `${prefix}.${path}`;
}

function pointerToField(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'))
    .join('.');
}

/**
 * Narrows `value` to the schema's static type or throws `VCA_ERR_VALIDATION` for the first failure,
 * with `extra.field` the dotted path under `fieldPrefix` (`body` when the value itself is wrong).
 */
export function assertMatches<T extends TSchema>(
  schema: T,
  value: unknown,
  fieldPrefix: string,
  what: string,
): asserts value is Static<T> {
  if (Value.Check(schema, value)) return;
  const first = Value.Errors(schema, value).First();
  const relative = first === undefined ? '' : pointerToField(first.path);
  const field = joinField(fieldPrefix, relative) || 'body';
  const problem = first?.message ?? 'does not match the schema';
  throw new VcaError('VCA_ERR_VALIDATION', `${what}: ${field}: ${problem}`, { field });
}

/** A JSON object (not null, not an array): the only shape a webhook body or sub-document may take. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `VCA_ERR_VALIDATION` every hook parser throws: the message says what is wrong and where. */
export function invalidField(field: string, message: string): VcaError {
  return new VcaError('VCA_ERR_VALIDATION', `${field}: ${message}`, { field });
}
