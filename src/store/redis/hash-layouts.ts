/**
 * The field layouts the Redis store and its Lua scripts share: the node, GPU and session hashes and the
 * cost text. The TypeScript side reads and writes with these lists; lua-emitter.ts turns the same lists
 * into the scripts' readers and writers (load_node, load_gpu, load_session, save_session,
 * session_reply, parse_cost, cost_text), so a field added, moved or renamed here changes both sides.
 */
import type { LoadVector } from '../../cost/session-cost.js';

/**
 * How a script decodes a hash value: `text` as stored; `number` with tonumber; `optional-number` nil
 * when '' (unknown); `flag` true when '1'.
 */
export type LuaDecoding = 'text' | 'number' | 'optional-number' | 'flag';

/** A hash field; `lua` when the scripts' reader loads it: the Lua table key and how it is decoded. */
export interface HashField {
  readonly name: string;
  readonly lua?: { readonly key: string; readonly decoding: LuaDecoding };
}

/** A hash: its fields, and the field whose absence means there is no such record. */
export interface HashLayout<Field extends HashField = HashField> {
  readonly fields: readonly Field[];
  readonly presentWhen: Field['name'];
}

/**
 * The node hash `node:<id>` (written by register-node and the lifecycle; load_node reads six: `tg`, the
 * telemetry guard, is record-telemetry's, read by the others only to skip clearing a guard already clear).
 */
export const nodeHash = {
  presentWhen: 'gpuCount',
  fields: [
    { name: 'state', lua: { key: 'state', decoding: 'text' } },
    { name: 'gpuCount', lua: { key: 'gpu_count', decoding: 'number' } },
    { name: 'systemEncoderLimit', lua: { key: 'system_limit', decoding: 'optional-number' } },
    { name: 'region', lua: { key: 'region', decoding: 'text' } },
    { name: 'labels', lua: { key: 'labels_json', decoding: 'text' } },
    // The telemetry guard (scripts/lib/telemetry.lua): '' when none; written by record-telemetry, cleared
    // by every other writer of what it holds (F.clear_node_guard skips a guard already '').
    { name: 'tg', lua: { key: 'tg', decoding: 'text' } },
    { name: 'id' },
    { name: 'identity' },
    { name: 'registration' },
    { name: 'stateChangedAt' },
    { name: 'registeredAt' },
    { name: 'drainDeadline' },
  ],
} as const satisfies HashLayout;

/**
 * The GPU hash `gpu:<node>#<index>`: catalog facts, committed load (c*), measured load (m*),
 * pending load (p*: sessions placed after the last sample, whose ids are in gpu-pending), the VRAM
 * reserve (rv; rf its floor), telemetry, and where the pool index holds it (pool and the indexed free render and stream shares fg, fs); modelVram is the catalog VRAM of
 * its model, against which a pool measures VRAM shares. uuid and
 * name are for views only; load_gpu does not read rf and sampledAt either (record-telemetry reads them
 * from the whole hash).
 */
export const gpuHash = {
  presentWhen: 'node',
  fields: [
    { name: 'node', lua: { key: 'node', decoding: 'text' } },
    { name: 'index', lua: { key: 'index', decoding: 'number' } },
    { name: 'model', lua: { key: 'model', decoding: 'text' } },
    { name: 'hostable', lua: { key: 'hostable', decoding: 'flag' } },
    { name: 'encoderLimit', lua: { key: 'encoder_limit', decoding: 'optional-number' } },
    { name: 'encoderScope', lua: { key: 'encoder_scope', decoding: 'text' } },
    { name: 'throttleTemperature', lua: { key: 'throttle_temperature', decoding: 'number' } },
    { name: 'memoryTotal', lua: { key: 'memory_total', decoding: 'number' } },
    { name: 'modelVram', lua: { key: 'model_vram', decoding: 'optional-number' } },
    { name: 'cg', lua: { key: 'cg', decoding: 'number' } },
    { name: 'ce', lua: { key: 'ce', decoding: 'number' } },
    { name: 'cv', lua: { key: 'cv', decoding: 'number' } },
    { name: 'cs', lua: { key: 'cs', decoding: 'number' } },
    { name: 'mg', lua: { key: 'mg', decoding: 'optional-number' } },
    { name: 'me', lua: { key: 'me', decoding: 'optional-number' } },
    { name: 'mv', lua: { key: 'mv', decoding: 'optional-number' } },
    { name: 'ms', lua: { key: 'ms', decoding: 'optional-number' } },
    { name: 'pg', lua: { key: 'pg', decoding: 'optional-number' } },
    { name: 'pe', lua: { key: 'pe', decoding: 'optional-number' } },
    { name: 'pv', lua: { key: 'pv', decoding: 'optional-number' } },
    { name: 'ps', lua: { key: 'ps', decoding: 'optional-number' } },
    { name: 'rf' },
    { name: 'rv', lua: { key: 'rv', decoding: 'optional-number' } },
    { name: 'sampledAt' },
    { name: 'temperature', lua: { key: 'temperature', decoding: 'optional-number' } },
    { name: 'throttle', lua: { key: 'throttle', decoding: 'flag' } },
    { name: 'telemetryAt', lua: { key: 'telemetry_at', decoding: 'optional-number' } },
    { name: 'stale', lua: { key: 'stale', decoding: 'flag' } },
    { name: 'pool', lua: { key: 'pool', decoding: 'text' } },
    { name: 'eligible', lua: { key: 'eligible', decoding: 'text' } },
    { name: 'fg', lua: { key: 'fg', decoding: 'text' } },
    { name: 'fs', lua: { key: 'fs', decoding: 'text' } },
    { name: 'uuid' },
    { name: 'name' },
  ],
} as const satisfies HashLayout;

export type NodeHashField = (typeof nodeHash.fields)[number]['name'];
export type GpuHashField = (typeof gpuHash.fields)[number]['name'];

/**
 * How a session field is stored (the same text in the hash and in a script's session reply): `text` as
 * is; `optional-text` '' when none; `number` as '%.17g'; `optional-number` likewise, '' when none;
 * `placement` one of the four placementFields ('' each when the session holds no GPU); `region`
 * ':' .. region, '' when the session names none (so a region '' stays distinct from none).
 */
export type SessionFieldEncoding =
  | 'text'
  | 'optional-text'
  | 'number'
  | 'optional-number'
  | 'placement'
  | 'region';

export interface SessionField {
  readonly name: string;
  readonly encoding: SessionFieldEncoding;
  /** In a script's session reply (and getSession's HMGET), in this order. */
  readonly reply: boolean;
  /** Changes over the session's life: written by every save; the others only at creation. */
  readonly saved: boolean;
}

/** The session hash `session:<id>`; `spec` is the immutable part of the record as JSON. */
export const sessionHash = {
  presentWhen: 'state',
  fields: [
    { name: 'spec', encoding: 'text', reply: true, saved: false },
    { name: 'state', encoding: 'text', reply: true, saved: true },
    { name: 'queuedAt', encoding: 'optional-number', reply: true, saved: true },
    { name: 'queueDeadline', encoding: 'optional-number', reply: true, saved: true },
    { name: 'assignedAt', encoding: 'optional-number', reply: true, saved: true },
    { name: 'endedAt', encoding: 'optional-number', reply: true, saved: true },
    { name: 'endReason', encoding: 'optional-text', reply: true, saved: true },
    { name: 'leaseExpiresAt', encoding: 'number', reply: true, saved: true },
    { name: 'migrations', encoding: 'number', reply: true, saved: true },
    { name: 'node', encoding: 'placement', reply: true, saved: true },
    { name: 'gpuIndex', encoding: 'placement', reply: true, saved: true },
    { name: 'model', encoding: 'placement', reply: true, saved: true },
    { name: 'cost', encoding: 'placement', reply: true, saved: true },
    { name: 'priority', encoding: 'text', reply: false, saved: false },
    { name: 'transport', encoding: 'text', reply: false, saved: false },
    { name: 'region', encoding: 'region', reply: false, saved: false },
    { name: 'labels', encoding: 'text', reply: false, saved: false },
    // The costs per model as '\n<model>\t<cost>' lines, '\n' last: what pick reads.
    { name: 'pick', encoding: 'text', reply: false, saved: false },
    // The gamer the session belongs to ('' when a front-end asked for it). Absent from records written
    // before it existed: the scripts read that as false, getSession as null, both as no owner.
    { name: 'owner', encoding: 'optional-text', reply: true, saved: false },
    // The reported latencies in the order they are tried (orderedLatencies, src/placement/latency-
    // policy.ts) as JSON [[region, ms], ...], '' when none; with createdAt, what lets a queue pass
    // recompute the session's latency plan. Absent from records written before: read as no latencies.
    { name: 'latencies', encoding: 'optional-text', reply: false, saved: false },
    { name: 'createdAt', encoding: 'optional-number', reply: false, saved: false },
  ],
} as const satisfies { presentWhen: string; fields: readonly SessionField[] };

type SessionReplyEntry = Extract<(typeof sessionHash.fields)[number], { reply: true }>;
export type SessionReplyField = SessionReplyEntry['name'];

/** The fields of a session reply, in order. */
export const sessionReplyFields: readonly SessionReplyField[] = sessionHash.fields
  .filter((field): field is SessionReplyEntry => field.reply)
  .map((field) => field.name);

/** Where each field sits in a session reply. */
export const sessionReplyPosition = Object.fromEntries(
  sessionReplyFields.map((name, position) => [name, position]),
) as Readonly<Record<SessionReplyField, number>>;

/**
 * The placement as session fields, in the order of the `placement` fields of sessionHash: the hash
 * field, the SessionPlacement key it holds, and how that is written.
 */
export const placementFields = [
  { name: 'node', key: 'nodeId', encoding: 'text' },
  { name: 'gpuIndex', key: 'gpuIndex', encoding: 'number' },
  { name: 'model', key: 'model', encoding: 'text' },
  { name: 'cost', key: 'cost', encoding: 'cost' },
] as const;

/**
 * Where each LoadVector field sits in the cost text (`<gpu>,<encoder>,<vram>,<sessions>`): a Record,
 * so a field added to LoadVector does not compile until it has a place here.
 */
const costTextPosition: Readonly<Record<keyof LoadVector, number>> = {
  gpu: 0,
  encoder: 1,
  vramMiB: 2,
  encoderSessions: 3,
};

/** A cost vector as text: these LoadVector fields in this order, joined by costSeparator. */
export const costFields: ReadonlyArray<keyof LoadVector> = (
  Object.keys(costTextPosition) as Array<keyof LoadVector>
).sort((a, b) => costTextPosition[a] - costTextPosition[b]);
export const costSeparator = ',';

/** A cost vector from its `<gpu>,<encoder>,<vram>,<sessions>` form. */
export function parseCost(text: string): LoadVector {
  const values = text.split(costSeparator);
  const cost = { gpu: 0, encoder: 0, vramMiB: 0, encoderSessions: 0 };
  for (let i = 0; i < costFields.length; i++) cost[costFields[i]!] = Number(values[i]);
  return cost;
}

export function costText(cost: LoadVector): string {
  let text = '';
  for (let i = 0; i < costFields.length; i++) {
    text += i === 0 ? `${cost[costFields[i]!]}` : `${costSeparator}${cost[costFields[i]!]}`;
  }
  return text;
}
