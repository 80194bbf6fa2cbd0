/**
 * Lua generated from TypeScript values, so the rules and layouts both stores obey are written once:
 * the node transition table (node-state.ts), the settings decoding (script-settings.ts), the fixed
 * KEYS (keys.ts) and the readers and writers of the node, GPU and session hashes and of the cost text
 * (hash-layouts.ts). Each block is placed into a lib file by a line `-- emit: <block>` (see
 * script-loader.ts). Everything is emitted as literal Lua, field by field, exactly as one would write
 * it by hand: a script pays nothing at run time for the values having come from TypeScript.
 */
import { canTransition, nodeStates } from '../../fleet/node-state.js';
import {
  costFields,
  costSeparator,
  gpuHash,
  type HashLayout,
  type LuaDecoding,
  nodeHash,
  placementFields,
  type SessionField,
  sessionHash,
} from './hash-layouts.js';
import { scriptKeyNames } from './keys.js';
import { scriptSettingsLayout } from './script-settings.js';

const luaKeywords = new Set(
  'and break do else elseif end false for function if in local nil not or repeat return then true until while'.split(
    ' ',
  ),
);

function isLuaName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !luaKeywords.has(name);
}

/** `name`, failing when it cannot be used as a Lua identifier (a layout error, found at load). */
function luaName(name: string, what: string): string {
  if (!isLuaName(name)) throw new Error(`lua-emitter: ${what} "${name}" is not a Lua identifier`);
  return name;
}

/** A Lua string literal (single-quoted, escaped). */
export function luaString(value: string): string {
  const escaped = value.replace(/[\\'\n\r\0]/g, (character) => {
    switch (character) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\0':
        return '\\0';
      default:
        return `\\${character}`;
    }
  });
  return `'${escaped}'`;
}

/** A table key: `name` or `['name']`. */
function luaKey(name: string): string {
  return isLuaName(name) ? name : `[${luaString(name)}]`;
}

/** `redis.call('HMGET', <key>, 'a', 'b', ...)` wrapped like the hand-written scripts (110 columns). */
function hmget(key: string, fields: readonly string[], indent: string): string {
  const lines = [`redis.call('HMGET', ${key},`];
  let line = `${indent}  `;
  for (const [i, field] of fields.entries()) {
    const item = luaString(field) + (i === fields.length - 1 ? ')' : ',');
    if (line.trim() !== '' && line.length + item.length + 1 > 110) {
      lines.push(line.trimEnd());
      line = `${indent}  `;
    }
    line += `${item} `;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}

function transitionTable(): string {
  const rows = nodeStates.map((from) => {
    const targets = nodeStates.filter((to) => canTransition(from, to));
    const set = targets.map((to) => `${luaKey(to)} = true`).join(', ');
    return `  ${luaKey(from)} = {${set ? ` ${set} ` : ''}},`;
  });
  return [
    '-- Emitted from canTransition over nodeStates (src/fleet/node-state.ts).',
    'F.ALLOWED_TRANSITIONS = {',
    ...rows,
    '}',
    '',
  ].join('\n');
}

function scriptKeys(): string {
  const [first] = scriptKeyNames;
  const suffix = `:${first}`;
  return [
    '-- Emitted from scriptKeyNames (src/store/redis/keys.ts): KEYS[1..] are these keys, then one queue per',
    '-- priority class.',
    `F.BASE = string.sub(KEYS[1], 1, -${suffix.length + 1}) -- KEYS[1] is '<base>${suffix}'`,
    ...scriptKeyNames.map(
      (name, i) => `F.K_${luaName(name.toUpperCase().replaceAll('-', '_'), 'key name')} = KEYS[${i + 1}]`,
    ),
    `F.QUEUE_KEY_OFFSET = ${scriptKeyNames.length}`,
    '',
  ].join('\n');
}

function settings(): string {
  const lines = [
    '-- Emitted from scriptSettingsLayout (src/store/redis/script-settings.ts): ARGV[1] holds one value per',
    "-- line, each followed by '\\n'.",
    'F.SETTINGS = (function()',
    '  local values = {}',
    "  for value in string.gmatch(ARGV[1], '([^\\n]*)\\n') do",
    '    values[#values + 1] = value',
    '  end',
    '  return values',
    'end)()',
  ];
  for (const [i, setting] of scriptSettingsLayout.entries()) {
    const name = `F.${luaName(setting.lua, 'setting')}`;
    const at = i + 1;
    if (setting.kind === 'number') lines.push(`${name} = tonumber(F.SETTINGS[${at}])`);
    else if (setting.kind === 'flag') lines.push(`${name} = F.SETTINGS[${at}] == '1'`);
    else if (setting.kind === 'latency-schedule') lines.push(`${name} = F.SETTINGS[${at}]`);
    else if (i === scriptSettingsLayout.length - 1) lines.push(`${name} = { unpack(F.SETTINGS, ${at}) }`);
    else throw new Error(`lua-emitter: the list setting ${setting.name} must come last`);
  }
  lines.push('');
  return lines.join('\n');
}

/**
 * Decodes `value`, an element of an HMGET reply (`replied`: false for a missing field) or of a whole hash
 * read as a table (nil for a missing field). An optional number of a reply takes tonumber, which is
 * F.num there (nil for false and ''), without F.num's call; tonumber(nil) fails, so a table's takes F.num.
 */
function decodeHashValue(decoding: LuaDecoding, value: string, replied: boolean): string {
  switch (decoding) {
    case 'text':
      return value;
    case 'number':
      return `tonumber(${value})`;
    case 'optional-number':
      return replied ? `tonumber(${value})` : `F.num(${value})`;
    case 'flag':
      return `${value} == '1'`;
  }
}

/**
 * `function F.<name>(<param>)`: HMGET of the layout's Lua fields, as a table keyed by their Lua keys; and
 * `F.<name>_from(<param>, m)`: the same table from a hash already read whole (no second read).
 */
function hashReader(name: string, keyFunction: string, param: string, layout: HashLayout, source: string) {
  const read = layout.fields.filter((field) => field.lua);
  const present = read.findIndex((field) => field.name === layout.presentWhen);
  if (present < 0) throw new Error(`lua-emitter: ${source}: ${layout.presentWhen} is not read by ${name}`);
  const entries = read.map(
    (field, i) =>
      `    ${luaName(field.lua!.key, 'Lua key')} = ${decodeHashValue(field.lua!.decoding, `h[${i + 1}]`, true)},`,
  );
  return [
    `-- Emitted from ${source} (src/store/redis/hash-layouts.ts).`,
    `function F.${name}(${param})`,
    `  local h = ${hmget(
      `F.${keyFunction}(${param})`,
      read.map((field) => field.name),
      '  ',
    )}`,
    `  if not h[${present + 1}] then`,
    '    return nil',
    '  end',
    '  return {',
    `    id = ${param},`,
    ...entries,
    '  }',
    'end',
    '',
    `-- As F.${name}, from the whole hash already read as a table field -> value (F.hgetall).`,
    `function F.${name}_from(${param}, m)`,
    `  if not m[${luaString(layout.presentWhen)}] then`,
    '    return nil',
    '  end',
    '  return {',
    `    id = ${param},`,
    ...read.map(
      (field) =>
        `    ${luaName(field.lua!.key, 'Lua key')} = ${decodeHashValue(field.lua!.decoding, `m[${luaString(field.name)}]`, false)},`,
    ),
    '  }',
    'end',
    '',
  ].join('\n');
}

function costText(): string {
  const names = costFields.map((field) => luaName(field, 'cost field'));
  const capture = names.map(() => `([^${costSeparator}]*)`).join(costSeparator);
  return [
    '-- Emitted from costFields (src/store/redis/hash-layouts.ts): a cost vector as',
    `-- '${names.join(costSeparator)}'.`,
    'function F.parse_cost(text)',
    `  local ${names.join(', ')} = string.match(text, ${luaString(`^${capture}$`)})`,
    `  return { ${names.map((field) => `${field} = tonumber(${field})`).join(', ')} }`,
    'end',
    '',
    'function F.cost_text(cost)',
    `  return ${names.map((field) => `F.fmt(cost.${field})`).join(` .. ${luaString(costSeparator)} .. `)}`,
    'end',
    '',
  ].join('\n');
}

/** `line` broken before each `separator` that would pass 110 columns, the rest indented by `indent`. */
function wrapped(line: string, separator: string, indent: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const [i, part] of line.split(separator).entries()) {
    const next = i === 0 ? part : `${separator.trimStart()}${part}`;
    if (i > 0 && current.length + 1 + next.length > 110) {
      lines.push(current);
      current = `${indent}${next}`;
    } else {
      current = i === 0 ? next : `${current} ${next}`;
    }
  }
  lines.push(current);
  return lines;
}

/** The session fields end_session (scripts/lib/reservations.lua) changes in a session it read. */
const endedFields: readonly string[] = ['state', 'endedAt', 'endReason'];

/**
 * The session hash and reply: placement_fields, load_session, save_session, session_reply, and for
 * end_session save_ended_session and ended_session_reply.
 */
function sessionRecord(): string {
  const fields: readonly SessionField[] = sessionHash.fields;
  const placement = fields.filter((field) => field.encoding === 'placement').map((field) => field.name);
  if (placement.join() !== placementFields.map((field) => field.name).join()) {
    throw new Error('lua-emitter: the placement fields of sessionHash must be placementFields, in order');
  }
  for (const field of fields) {
    luaName(field.name, 'session field');
    if (field.name === 'whole' || field.name === 'stored')
      throw new Error(`lua-emitter: "${field.name}" cannot be a session field`);
  }
  for (const name of endedFields) {
    if (!fields.some((field) => field.name === name && field.saved))
      throw new Error(`lua-emitter: ${name}, changed by end_session, is not a saved session field`);
  }
  for (const reserved of ['session', 'extra', 'fields', 'n', 'v', 'id']) {
    if (placement.includes(reserved))
      throw new Error(`lua-emitter: "${reserved}" cannot be a placement field`);
  }
  const position = (name: string) => fields.findIndex((field) => field.name === name) + 1;
  const placementLocals = `  local ${placement.join(', ')} = F.placement_fields(session.placement)`;
  const encode = (field: SessionField): string => {
    switch (field.encoding) {
      case 'text':
        return `session.${field.name}`;
      case 'optional-text':
        return `session.${field.name} or ''`;
      case 'number':
        return `F.fmt(session.${field.name})`;
      case 'optional-number':
        return `F.opt(session.${field.name})`;
      case 'placement':
        return field.name;
      case 'region':
        throw new Error(`lua-emitter: session field ${field.name} (region) is written only at creation`);
    }
  };
  const decode = (field: SessionField, value: string): string | undefined => {
    switch (field.encoding) {
      case 'text':
      case 'optional-text':
        return value;
      case 'number':
        return `tonumber(${value})`;
      case 'optional-number':
        // An HMGET reply's: tonumber is F.num there (decodeHashValue).
        return `tonumber(${value})`;
      default:
        return undefined;
    }
  };
  const placementDecode = placementFields.map((field) => {
    const value = `v[${position(field.name)}]`;
    const decoded =
      field.encoding === 'number'
        ? `tonumber(${value})`
        : field.encoding === 'cost'
          ? `F.parse_cost(${value})`
          : value;
    return `${field.key} = ${decoded}`;
  });
  const placementEncode = placementFields.map((field) => {
    const value = `placement.${field.key}`;
    return field.encoding === 'number'
      ? `F.fmt(${value})`
      : field.encoding === 'cost'
        ? `F.cost_text(${value})`
        : value;
  });
  const region = fields.filter((field) => field.encoding === 'region');
  const saved = fields.filter((field) => field.saved);
  const whole = saved.map((field) => `v[${position(field.name)}] ~= false`);
  const reply = fields.filter((field) => field.reply);
  const usesPlacement = (list: readonly SessionField[]) =>
    list.some((field) => field.encoding === 'placement');
  return [
    '-- Emitted from sessionHash and placementFields (src/store/redis/hash-layouts.ts).',
    "-- The placement as its session hash fields (each '' when there is none).",
    'function F.placement_fields(placement)',
    '  if placement == nil then',
    `    return ${placement.map(() => "''").join(', ')}`,
    '  end',
    `  return ${placementEncode.join(', ')}`,
    'end',
    '',
    '-- A session as a table: its fields decoded, placement (nil when none), region (nil when none),',
    '-- `stored`: the fields as read, and `whole`: true when the hash holds every field save_session writes',
    '-- (a record written before one of them existed lacks it). Each stored number is what save_session',
    '-- writes for its decoded value (the scripts alone write the session hash, with these encodings).',
    'function F.load_session(id)',
    `  local v = ${hmget(
      'F.session_key(id)',
      fields.map((field) => field.name),
      '  ',
    )}`,
    `  if not v[${position(sessionHash.presentWhen)}] then`,
    '    return nil',
    '  end',
    '  local session = {',
    '    id = id,',
    ...fields.flatMap((field, i) => {
      const decoded = decode(field, `v[${i + 1}]`);
      return decoded === undefined ? [] : [`    ${field.name} = ${decoded},`];
    }),
    '    stored = v,',
    ...wrapped(`    whole = ${whole.join(' and ')},`, ' and ', '      '),
    '  }',
    `  if v[${position(placement[0]!)}] ~= '' then`,
    `    session.placement = { ${placementDecode.join(', ')} }`,
    '  end',
    ...region.flatMap((field) => [
      `  if v[${position(field.name)}] ~= '' then`,
      `    session.${field.name} = string.sub(v[${position(field.name)}], 2)`,
      '  end',
    ]),
    '  return session',
    'end',
    '',
    '-- Writes the fields of the session that change over its life, and `extra` field, value pairs (nil',
    '-- when none) in the same HSET.',
    'function F.save_session(session, extra)',
    ...(usesPlacement(saved) ? [placementLocals] : []),
    '  local fields = extra or {}',
    '  local n = #fields',
    ...saved.map(
      (field, i) =>
        `  fields[n + ${2 * i + 1}], fields[n + ${2 * i + 2}] = ${luaString(field.name)}, ${encode(field)}`,
    ),
    "  redis.call('HSET', F.session_key(session.id), unpack(fields))",
    'end',
    '',
    '-- The session as the TypeScript side reads it: the reply fields, in order, as stored.',
    'function F.session_reply(session)',
    ...(usesPlacement(reply) ? [placementLocals] : []),
    '  return {',
    ...reply.map((field) => `    ${encode(field)},`),
    '  }',
    'end',
    '',
    '-- For end_session: a session as load_session read it, changed since only in its ended fields',
    `-- (${endedFields.join(', ')}): writes those (the other fields save_session writes are stored as it`,
    '-- would write them), or the whole session as save_session when the record lacks one of its fields.',
    'function F.save_ended_session(session)',
    '  if not session.whole then',
    '    return F.save_session(session)',
    '  end',
    "  redis.call('HSET', F.session_key(session.id),",
    ...endedFields.map(
      (name, i) =>
        `    ${luaString(name)}, ${encode(fields.find((field) => field.name === name)!)}${i === endedFields.length - 1 ? ')' : ','}`,
    ),
    'end',
    '',
    '-- As F.session_reply for the same session: the saved fields it did not change as read.',
    'function F.ended_session_reply(session)',
    '  if not session.whole then',
    '    return F.session_reply(session)',
    '  end',
    '  local v = session.stored',
    '  return {',
    ...reply.map((field) =>
      field.saved && !endedFields.includes(field.name)
        ? `    v[${position(field.name)}],`
        : `    ${encode(field)},`,
    ),
    '  }',
    'end',
    '',
  ].join('\n');
}

let blocks: ReadonlyMap<string, string> | undefined;

/** Every emitted block by name (built once per process). */
export function emittedLua(): ReadonlyMap<string, string> {
  blocks ??= new Map([
    ['script-keys', scriptKeys()],
    ['settings', settings()],
    ['allowed-transitions', transitionTable()],
    ['node-reader', hashReader('load_node', 'node_key', 'id', nodeHash, 'nodeHash')],
    ['gpu-reader', hashReader('load_gpu', 'gpu_key', 'gid', gpuHash, 'gpuHash')],
    ['cost-text', costText()],
    ['session-record', sessionRecord()],
  ]);
  return blocks;
}
