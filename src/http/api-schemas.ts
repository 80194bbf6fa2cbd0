/**
 * Request schemas of the v1 API. Route declarations name them (`jsonBody` in `api-routes.ts`), so one
 * schema both validates a body in the route pipeline and documents it in OpenAPI; the play socket
 * checks its messages with the same `validateBody`.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { VcaError } from '../errors.js';
import { NodeLabelsSchema } from '../hooks/schemas.js';
import { latencyLimits } from '../sessions/session-request.js';

const Name = (maxLength: number) => Type.String({ minLength: 1, maxLength });
const Percent = Type.Union([Type.Number({ minimum: 0, maximum: 100 }), Type.Null()]);
const NonNegative = Type.Union([Type.Number({ minimum: 0, maximum: 1e9 }), Type.Null()]);

export const SessionRequestSchema = Type.Object(
  {
    game: Type.String({ minLength: 1, maxLength: 64, description: 'Catalog id, see GET /v1/catalog' }),
    resolution: Type.String({ minLength: 1, maxLength: 16, description: '1920x1080, 1080p, 4k, ...' }),
    fps: Type.Integer({ minimum: 1, maximum: 360 }),
    region: Type.Optional(Name(64)),
    /** Round-trip times the gamer measured to regions' ping targets (GET /v1/regions); see latencyLimits. */
    latencies: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^.{1,64}$' }),
        Type.Number({ exclusiveMinimum: 0, maximum: latencyLimits.maxMs }),
        {
          maxProperties: latencyLimits.maxRegions,
          description: 'Round-trip ms per region ({"eu-west": 23}); unknown regions: ignored, with a warning',
        },
      ),
    ),
    /** Labels the node must carry; the rules of node labels, so a label no node can carry is a 400. */
    labels: Type.Optional(NodeLabelsSchema),
    gpuModels: Type.Optional(Type.Array(Name(128), { minItems: 1, maxItems: 16 })),
    priority: Type.Optional(Name(32)),
    wait: Type.Optional(Type.Boolean({ description: 'false: 503 instead of queueing when nothing fits' })),
  },
  { additionalProperties: false },
);
export type SessionRequestBody = Static<typeof SessionRequestSchema>;

export const GpuTelemetrySchema = Type.Object(
  {
    index: Type.Integer({ minimum: 0, maximum: 63 }),
    uuid: Type.Optional(Type.Union([Name(128), Type.Null()])),
    name: Type.Optional(Type.Union([Name(128), Type.Null()])),
    utilizationGpu: Type.Optional(Percent),
    utilizationMemory: Type.Optional(Percent),
    utilizationEncoder: Type.Optional(Percent),
    utilizationDecoder: Type.Optional(Percent),
    temperatureGpu: Type.Optional(Type.Union([Type.Number({ minimum: -50, maximum: 200 }), Type.Null()])),
    memoryUsed: Type.Optional(NonNegative),
    memoryTotal: Type.Optional(NonNegative),
    powerDraw: Type.Optional(NonNegative),
    powerLimit: Type.Optional(NonNegative),
    encoderSessions: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 10_000 }), Type.Null()])),
    encoderAvgFps: Type.Optional(NonNegative),
    throttleActive: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  },
  { additionalProperties: false },
);

export const TelemetryReportSchema = Type.Object(
  {
    gpus: Type.Array(GpuTelemetrySchema, { minItems: 1, maxItems: 64 }),
    ts: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type TelemetryReportBody = Static<typeof TelemetryReportSchema>;

export const DrainRequestSchema = Type.Object(
  {
    deadlineSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 7 * 86_400 })),
  },
  { additionalProperties: false },
);

/** Messages a gamer sends on WebSocket /v1/play. */
export const PlayRequestMessageSchema = Type.Composite(
  [Type.Object({ type: Type.Literal('request') }), SessionRequestSchema],
  { additionalProperties: false },
);
export const PlayResumeMessageSchema = Type.Object(
  { type: Type.Literal('resume'), sessionId: Name(64), resumeToken: Name(128) },
  { additionalProperties: false },
);
export const PlayEndMessageSchema = Type.Object(
  { type: Type.Literal('end') },
  { additionalProperties: false },
);

const compiled = new WeakMap<TSchema, ReturnType<typeof TypeCompiler.Compile>>();

/** Validates `value` against `schema`; a failure is VCA_ERR_VALIDATION naming the field. Nothing changes. */
export function validateBody<S extends TSchema>(schema: S, value: unknown, what = 'body'): Static<S> {
  let check = compiled.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    compiled.set(schema, check);
  }
  if (value === undefined)
    throw new VcaError('VCA_ERR_VALIDATION', `The request needs a JSON ${what}`, { field: what });
  if (check.Check(value)) return value as Static<S>;
  const first = check.Errors(value).First();
  // A JSON pointer to an empty key (`/labels/`) ends in '/': the field is then the object holding it.
  const field = first?.path.replace(/^\//, '').replace(/\/$/, '').replaceAll('/', '.') || what;
  throw new VcaError('VCA_ERR_VALIDATION', `${field}: ${first?.message ?? 'invalid'}`, { field });
}
