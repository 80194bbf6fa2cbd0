-- prelude: shared definitions, prepended by scripts.ts to every script (never run on its own).
-- Definitions only, no work beyond parsing the settings: scripts.ts keeps, per script, only the
-- top-level `local` definitions the script uses (directly or through other definitions), so a script
-- pays for what it needs. Every top-level definition starts with `local` at column 0 and runs until
-- the next one; a definition may only use definitions above it.
-- KEYS (every script): [1] <base>:nodes  [2] <base>:seq  [3] <base>:fresh  [4] <base>:deadlines
--   [5] <base>:pools  [6..] <base>:queue:<class>, highest class first.
--   Keys computed from data (node:<id>, gpu:<node>#<i>, gpu-sessions:..., pool-gpu/pool-enc:<pool>,
--   session:<id>, webhook:<key>) are built from the same <base> and share its hash tag `{cluster}`,
--   so on Redis Cluster they live in the slot of the declared keys.
-- ARGV (every script): [1] the store settings, each value followed by '\n': GPU capacity, encoder
--   capacity (ppm under headroom), VRAM headroom, temperature margin, require telemetry (1/0), stale
--   after (ms), retain ended (ms), candidate bound, then the priority classes, highest first; script
--   arguments start at ARGV[2].
-- Errors: validation failures raise `error({err = '<VCA_ERR_CODE> <message>'})` BEFORE any write (a
--   Redis script is not rolled back), and the TypeScript side turns them into VcaErrors.
-- Numbers: committed loads are integers (ppm, MiB, sessions), so committed == sum of session costs
--   holds exactly; Lua numbers are doubles, exact for integers below 2^53. Numbers are written as
--   '%.17g' strings (exact round trip).
-- Sessions: a hash of plain fields (SESSION_FIELDS); `spec` is the immutable part as JSON (never
--   decoded here), `pick` the costs per model as '<model>\t<gpu>,<encoder>,<vram>,<sessions>\n' lines.

local BASE = string.sub(KEYS[1], 1, -7) -- KEYS[1] is '<base>:nodes'
local K_NODES = KEYS[1]
local K_SEQ = KEYS[2]
local K_FRESH = KEYS[3]
local K_DEADLINES = KEYS[4]
local K_POOLS = KEYS[5]
local QUEUE_KEY_OFFSET = 5

local SETTINGS = (function()
  local values = {}
  for value in string.gmatch(ARGV[1], '([^\n]*)\n') do
    values[#values + 1] = value
  end
  return values
end)()
local GPU_CAP = tonumber(SETTINGS[1])
local ENC_CAP = tonumber(SETTINGS[2])
local VRAM_HEADROOM = tonumber(SETTINGS[3])
local TEMPERATURE_MARGIN = tonumber(SETTINGS[4])
local REQUIRE_TELEMETRY = SETTINGS[5] == '1'
local STALE_AFTER_MS = tonumber(SETTINGS[6])
local RETAIN_ENDED_MS = tonumber(SETTINGS[7])
local MAX_CANDIDATES = tonumber(SETTINGS[8])
local CLASSES = { unpack(SETTINGS, 9) }
local BATCH = 64
-- The first batch of a pool walk is small: a packed walk usually takes its first candidate.
local FIRST_BATCH = 2
-- Pool scores are doubles; a GPU whose free share equals the need must never fall outside the range.
local SCORE_EPSILON = 1e-9

local function fail(code, message)
  error({ err = code .. ' ' .. message })
end

local function fmt(value)
  return string.format('%.17g', value)
end

local function node_key(id)
  return BASE .. ':node:' .. id
end
local function gpu_id(node_id, index)
  return node_id .. '#' .. string.format('%d', index)
end
local function gpu_key(gid)
  return BASE .. ':gpu:' .. gid
end
local function gpu_sessions_key(gid)
  return BASE .. ':gpu-sessions:' .. gid
end
local function session_key(id)
  return BASE .. ':session:' .. id
end
local function pool_key(axis, pool)
  return BASE .. ':pool-' .. axis .. ':' .. pool
end

local function num(value)
  if value == nil or value == false or value == '' then
    return nil
  end
  return tonumber(value)
end

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then
    return nil
  end
  local map = {}
  for i = 1, #flat, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end

-- Nodes ---------------------------------------------------------------------------------------------

local function load_node(id)
  local h = redis.call('HMGET', node_key(id), 'state', 'gpuCount', 'systemEncoderLimit', 'region', 'labels')
  if not h[2] then
    return nil
  end
  return {
    id = id,
    state = h[1],
    gpu_count = tonumber(h[2]),
    system_limit = num(h[3]),
    region = h[4],
    labels_json = h[5],
  }
end

local function require_node(id)
  local node = load_node(id)
  if not node then
    fail('VCA_ERR_NODE_NOT_FOUND', 'Node "' .. id .. '" is not registered')
  end
  return node
end

-- GPUs ----------------------------------------------------------------------------------------------

-- The GPU hash fields placement and eligibility read (uuid and name are only for views).
local function load_gpu(gid)
  local h = redis.call('HMGET', gpu_key(gid),
    'node', 'index', 'model', 'hostable', 'encoderLimit', 'encoderScope', 'throttleTemperature',
    'memoryTotal', 'cg', 'ce', 'cv', 'cs', 'mg', 'me', 'mv', 'ms', 'temperature', 'throttle',
    'telemetryAt', 'stale', 'pool', 'eligible', 'fg', 'fe')
  if not h[1] then
    return nil
  end
  return {
    id = gid,
    node = h[1],
    index = tonumber(h[2]),
    model = h[3],
    hostable = h[4] == '1',
    encoder_limit = num(h[5]),
    encoder_scope = h[6],
    throttle_temperature = tonumber(h[7]),
    memory_total = tonumber(h[8]),
    cg = tonumber(h[9]),
    ce = tonumber(h[10]),
    cv = tonumber(h[11]),
    cs = tonumber(h[12]),
    mg = num(h[13]),
    me = num(h[14]),
    mv = num(h[15]),
    ms = num(h[16]),
    temperature = num(h[17]),
    throttle = h[18] == '1',
    telemetry_at = num(h[19]),
    stale = h[20] == '1',
    pool = h[21],
    eligible = h[22],
    fg = h[23],
    fe = h[24],
  }
end

-- Effective load: max(committed, measured); an unknown measure counts as committed.
local function eff_gpu(g)
  return math.max(g.cg, g.mg or 0)
end
local function eff_enc(g)
  return math.max(g.ce, g.me or 0)
end
local function eff_vram(g)
  return math.max(g.cv, g.mv or 0)
end
local function eff_sessions(g)
  return math.max(g.cs, g.ms or 0)
end

local function node_gpus(node)
  local gpus = {}
  for i = 0, node.gpu_count - 1 do
    gpus[#gpus + 1] = load_gpu(gpu_id(node.id, i))
  end
  return gpus
end

local function encoder_sessions_in_use(gpus)
  local total = 0
  for _, g in ipairs(gpus) do
    total = total + eff_sessions(g)
  end
  return total
end

local function node_session_count(node)
  local total = 0
  for i = 0, node.gpu_count - 1 do
    total = total + redis.call('ZCARD', gpu_sessions_key(gpu_id(node.id, i)))
  end
  return total
end

-- Same rules as ClusterState.isEligible.
local function is_eligible(node, g, in_use)
  if node.state ~= 'ready' or not g.hostable then
    return false
  end
  if g.stale or (g.telemetry_at == nil and REQUIRE_TELEMETRY) then
    return false
  end
  if g.throttle then
    return false
  end
  if g.temperature ~= nil and g.temperature >= g.throttle_temperature - TEMPERATURE_MARGIN then
    return false
  end
  local session_capacity = math.huge
  if g.encoder_scope == 'gpu' and g.encoder_limit ~= nil then
    session_capacity = g.encoder_limit
  end
  if eff_sessions(g) >= session_capacity then
    return false
  end
  if node.system_limit ~= nil and in_use >= node.system_limit then
    return false
  end
  return true
end

-- The committed load of `g` as HSET arguments.
local function committed_fields(g)
  return { 'cg', fmt(g.cg), 'ce', fmt(g.ce), 'cv', fmt(g.cv), 'cs', fmt(g.cs) }
end

-- Puts the GPU in its pool's sorted sets (by free share on each axis) iff it is eligible. The hash
-- remembers the indexed scores (fg, fe), so an unchanged GPU costs no write. `fields`: other GPU hash
-- fields to write in the same HSET (nil when none).
local function index_gpu(node, g, in_use, fields)
  local key = gpu_key(g.id)
  fields = fields or {}
  if is_eligible(node, g, in_use) then
    local pool = g.model .. '|' .. node.region
    local free_gpu = fmt((GPU_CAP - eff_gpu(g)) / GPU_CAP)
    local free_enc = fmt((ENC_CAP - eff_enc(g)) / ENC_CAP)
    if not (g.eligible == '1' and g.pool == pool and g.fg == free_gpu and g.fe == free_enc) then
      redis.call('ZADD', pool_key('gpu', pool), free_gpu, g.id)
      redis.call('ZADD', pool_key('enc', pool), free_enc, g.id)
      if g.pool ~= pool then
        redis.call('SADD', K_POOLS, pool)
      end
      local n = #fields
      fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'eligible', '1', 'pool', pool
      fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'fg', free_gpu, 'fe', free_enc
      g.eligible, g.pool, g.fg, g.fe = '1', pool, free_gpu, free_enc
    end
  elseif not (g.eligible == '0' and (g.pool == '' or not g.pool)) then
    if g.pool and g.pool ~= '' then
      redis.call('ZREM', pool_key('gpu', g.pool), g.id)
      redis.call('ZREM', pool_key('enc', g.pool), g.id)
    end
    local n = #fields
    fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'eligible', '0', 'pool', ''
    fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'fg', '', 'fe', ''
    g.eligible, g.pool, g.fg, g.fe = '0', '', '', ''
  end
  if #fields > 0 then
    redis.call('HSET', key, unpack(fields))
  end
end

local function refresh_node(node)
  local gpus = node_gpus(node)
  local in_use = encoder_sessions_in_use(gpus)
  for _, g in ipairs(gpus) do
    index_gpu(node, g, in_use)
  end
end

-- After the committed load of `g` (as loaded, then changed in memory) changed: writes it, and
-- re-indexes the GPU, or its whole node when its GPUs share an encoder session limit (they change
-- together).
local function save_committed(node, g)
  if node.system_limit ~= nil then
    redis.call('HSET', gpu_key(g.id), unpack(committed_fields(g)))
    refresh_node(node)
  else
    index_gpu(node, g, 0, committed_fields(g))
  end
end

-- Node lifecycle ------------------------------------------------------------------------------------

local ALLOWED_TRANSITIONS = {
  provisioning = { ready = true, unhealthy = true, draining = true, removed = true },
  ready = { unhealthy = true, draining = true, removed = true },
  unhealthy = { ready = true, draining = true, removed = true },
  draining = { ready = true, drained = true, removed = true },
  drained = { removed = true },
  removed = {},
}

local function check_transition(node, to)
  if node.state == to then
    return
  end
  local allowed = ALLOWED_TRANSITIONS[node.state]
  if not allowed or not allowed[to] then
    fail('VCA_ERR_NODE_STATE', 'Node "' .. node.id .. '" cannot go from ' .. node.state .. ' to ' .. to)
  end
end

local function delete_node(node)
  for i = 0, node.gpu_count - 1 do
    local gid = gpu_id(node.id, i)
    local pool = redis.call('HGET', gpu_key(gid), 'pool')
    if pool and pool ~= '' then
      redis.call('ZREM', pool_key('gpu', pool), gid)
      redis.call('ZREM', pool_key('enc', pool), gid)
    end
    redis.call('ZREM', K_FRESH, gid)
    redis.call('DEL', gpu_key(gid), gpu_sessions_key(gid))
  end
  redis.call('DEL', node_key(node.id))
  redis.call('ZREM', K_NODES, node.id)
end

-- Same as ClusterState.transition: validates first, so a refused move writes nothing.
local function transition(node, to, now)
  if node.state == to then
    return
  end
  check_transition(node, to)
  node.state = to
  if to == 'removed' then
    delete_node(node)
    return
  end
  if to ~= 'draining' then
    redis.call('HSET', node_key(node.id), 'state', to, 'stateChangedAt', now, 'drainDeadline', '')
  else
    redis.call('HSET', node_key(node.id), 'state', to, 'stateChangedAt', now)
  end
  refresh_node(node)
end

-- Marks GPUs whose telemetry arrived before now - staleAfterMs; a ready node whose every GPU went
-- silent becomes unhealthy (its sessions keep running).
local function sweep_stale(now)
  local old = redis.call('ZRANGEBYSCORE', K_FRESH, '-inf', '(' .. fmt(now - STALE_AFTER_MS))
  if #old == 0 then
    return
  end
  local touched, order = {}, {}
  for _, gid in ipairs(old) do
    redis.call('ZREM', K_FRESH, gid)
    redis.call('HSET', gpu_key(gid), 'stale', '1')
    local node_id = redis.call('HGET', gpu_key(gid), 'node')
    if node_id and not touched[node_id] then
      touched[node_id] = true
      order[#order + 1] = node_id
    end
  end
  for _, node_id in ipairs(order) do
    local node = load_node(node_id)
    if node then
      local all_stale = true
      for i = 0, node.gpu_count - 1 do
        if redis.call('HGET', gpu_key(gpu_id(node_id, i)), 'stale') ~= '1' then
          all_stale = false
          break
        end
      end
      if node.state == 'ready' and all_stale then
        transition(node, 'unhealthy', now)
      else
        refresh_node(node)
      end
    end
  end
end

-- A node as the TypeScript side builds its NodeView: {node hash, gpu hash, session count, ...}.
local function node_dump(node_id)
  local flat = redis.call('HGETALL', node_key(node_id))
  if #flat == 0 then
    return false
  end
  local out = { flat }
  local count = 0
  for i = 1, #flat, 2 do
    if flat[i] == 'gpuCount' then
      count = tonumber(flat[i + 1])
      break
    end
  end
  for i = 0, count - 1 do
    local gid = gpu_id(node_id, i)
    out[#out + 1] = redis.call('HGETALL', gpu_key(gid))
    out[#out + 1] = redis.call('ZCARD', gpu_sessions_key(gid))
  end
  return out
end

-- Placement -----------------------------------------------------------------------------------------

-- A cost vector from its '<gpu>,<encoder>,<vram>,<sessions>' form.
local function parse_cost(text)
  local g, e, v, s = string.match(text, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
  return { gpu = tonumber(g), encoder = tonumber(e), vramMiB = tonumber(v), encoderSessions = tonumber(s) }
end

local function cost_text(cost)
  return fmt(cost.gpu) .. ',' .. fmt(cost.encoder) .. ',' .. fmt(cost.vramMiB) .. ',' .. fmt(cost.encoderSessions)
end

-- The cost on `model` from a session's pick costs ('\n<model>\t<cost>\n...'), or nil.
local function cost_on(pick, model)
  local at = string.find(pick, '\n' .. model .. '\t', 1, true)
  if not at then
    return nil
  end
  local from = at + #model + 2
  return parse_cost(string.sub(pick, from, string.find(pick, '\n', from, true) - 1))
end

-- Exact check, as PlacementIndex.allowed + fits: labels, excluded node, every dimension under headroom,
-- per-GPU and per-system encoder session limits. `nodes` caches node facts for one decision.
local function candidate_fits(gid, cost, labels, exclude, nodes)
  local g = load_gpu(gid)
  if not g then
    return nil
  end
  if exclude ~= nil and g.node == exclude then
    return nil
  end
  local facts = nodes[g.node]
  if not facts then
    local node = load_node(g.node)
    if not node then
      return nil
    end
    facts = { node = node, in_use = 0 }
    if node.system_limit ~= nil then
      facts.in_use = encoder_sessions_in_use(node_gpus(node))
    end
    nodes[g.node] = facts
  end
  if labels ~= nil then
    if not facts.labels then
      facts.labels = cjson.decode(facts.node.labels_json)
    end
    for name, value in pairs(labels) do
      if facts.labels[name] ~= value then
        return nil
      end
    end
  end
  if eff_gpu(g) + cost.gpu > GPU_CAP then
    return nil
  end
  if eff_enc(g) + cost.encoder > ENC_CAP then
    return nil
  end
  if eff_vram(g) + cost.vramMiB > math.floor(VRAM_HEADROOM * g.memory_total) then
    return nil
  end
  if g.encoder_scope == 'gpu' and g.encoder_limit ~= nil and eff_sessions(g) + cost.encoderSessions > g.encoder_limit then
    return nil
  end
  if facts.node.system_limit ~= nil and facts.in_use + cost.encoderSessions > facts.node.system_limit then
    return nil
  end
  return g, facts.node
end

-- Picks a GPU for a session (its pick costs, region and labels). Each pool of a model the session has
-- a cost for (and of its region, if it names one) is a cursor over the pool's sorted set of its
-- dominant axis, walked from the need upward (packed: best fit) or from the emptiest downward (spread)
-- in batches read WITH their scores. The cursors are merged by score left after the session
-- (free share - need): the next candidate checked is always the best one of all pools (packed: least
-- left, spread: most; ties go to the pool first in name order), so the first candidate that passes the
-- exact check is the answer, and a losing pool's GPUs are never loaded. The same GPU as taking each
-- pool's first fit and then the best pool. At most MAX_CANDIDATES GPUs are checked per decision:
-- beyond that bound a request may be queued although some GPU far down a pool would fit (only with
-- thousands of GPUs that fail on VRAM, labels or the secondary axis).
-- Returns the GPU (load_gpu table), the cost on its model and its node (load_node table), or nil.
local function pick(session, strategy, exclude)
  local packed = strategy ~= 'spread'
  local region = session.region
  local labels = nil
  if session.labels ~= '' then
    labels = cjson.decode(session.labels)
  end
  local pools = redis.call('SMEMBERS', K_POOLS)
  table.sort(pools)
  -- Reads the cursor's next batch: ids and keys (score left after the session), position reset.
  local function fill(cursor)
    local batch
    if packed then
      batch = redis.call('ZRANGEBYSCORE', cursor.key, cursor.low, '+inf', 'WITHSCORES', 'LIMIT', cursor.offset,
        cursor.size)
    else
      batch = redis.call('ZREVRANGEBYSCORE', cursor.key, '+inf', cursor.low, 'WITHSCORES', 'LIMIT',
        cursor.offset, cursor.size)
    end
    cursor.batch = batch
    cursor.at = 1
    cursor.last = #batch < 2 * cursor.size
    cursor.offset = cursor.offset + cursor.size
    cursor.size = BATCH
  end
  local cursors = {}
  for _, pool in ipairs(pools) do
    local separator = string.find(pool, '|', 1, true)
    local model = string.sub(pool, 1, separator - 1)
    local cost = nil
    if region == nil or region == string.sub(pool, separator + 1) then
      cost = cost_on(session.pick, model)
    end
    if cost ~= nil then
      local gpu_need = cost.gpu / GPU_CAP
      local enc_need = cost.encoder / ENC_CAP
      if gpu_need <= 1 and enc_need <= 1 then
        local encoder_primary = enc_need > gpu_need
        local need = encoder_primary and enc_need or gpu_need
        local cursor = {
          key = pool_key(encoder_primary and 'enc' or 'gpu', pool),
          low = fmt(need - SCORE_EPSILON),
          need = need,
          cost = cost,
          offset = 0,
          size = FIRST_BATCH,
        }
        fill(cursor)
        if #cursor.batch > 0 then
          cursors[#cursors + 1] = cursor
        end
      end
    end
  end
  local nodes = {}
  for _ = 1, MAX_CANDIDATES do
    local best, best_left = nil, nil
    for _, cursor in ipairs(cursors) do
      if cursor.at <= #cursor.batch then
        local left = tonumber(cursor.batch[cursor.at + 1]) - cursor.need
        if best == nil or (packed and left < best_left) or (not packed and left > best_left) then
          best, best_left = cursor, left
        end
      end
    end
    if best == nil then
      return nil
    end
    local gid = best.batch[best.at]
    best.at = best.at + 2
    if best.at > #best.batch and not best.last then
      fill(best)
    end
    local found, found_node = candidate_fits(gid, best.cost, labels, exclude, nodes)
    if found ~= nil then
      return found, best.cost, found_node
    end
  end
  return nil
end

-- Sessions ------------------------------------------------------------------------------------------

-- The session hash, in the order the TypeScript side reads replies (SESSION_FIELDS in redis-store.ts
-- holds the first 13).
local SESSION_FIELDS = {
  'spec', 'state', 'queuedAt', 'queueDeadline', 'assignedAt', 'endedAt', 'endReason', 'leaseExpiresAt',
  'migrations', 'node', 'gpuIndex', 'model', 'cost', 'priority', 'transport', 'region', 'labels', 'pick',
}

-- A session as a table: spec (JSON text), state, times (numbers or nil), placement (nil when none).
local function load_session(id)
  local v = redis.call('HMGET', session_key(id), unpack(SESSION_FIELDS))
  if not v[2] then
    return nil
  end
  local session = {
    id = id,
    spec = v[1],
    state = v[2],
    queuedAt = num(v[3]),
    queueDeadline = num(v[4]),
    assignedAt = num(v[5]),
    endedAt = num(v[6]),
    endReason = v[7],
    leaseExpiresAt = tonumber(v[8]),
    migrations = tonumber(v[9]),
    priority = v[14],
    transport = v[15],
    labels = v[17],
    pick = v[18],
  }
  if v[10] ~= '' then
    session.placement = { nodeId = v[10], gpuIndex = tonumber(v[11]), model = v[12], cost = parse_cost(v[13]) }
  end
  if v[16] ~= '' then
    session.region = string.sub(v[16], 2) -- stored as ':' .. region; '' when the session names none
  end
  return session
end

local function opt(value)
  if value == nil then
    return ''
  end
  return fmt(value)
end

-- The placement as the four hash fields node, gpuIndex, model, cost ('' each when there is none).
local function placement_fields(placement)
  if placement == nil then
    return '', '', '', ''
  end
  return placement.nodeId, fmt(placement.gpuIndex), placement.model, cost_text(placement.cost)
end

-- Writes the fields of the session that change over its life, and `extra` field, value pairs (nil
-- when none) in the same HSET.
local function save_session(session, extra)
  local node, index, model, cost = placement_fields(session.placement)
  local fields = extra or {}
  local n = #fields
  fields[n + 1], fields[n + 2] = 'state', session.state
  fields[n + 3], fields[n + 4] = 'queuedAt', opt(session.queuedAt)
  fields[n + 5], fields[n + 6] = 'queueDeadline', opt(session.queueDeadline)
  fields[n + 7], fields[n + 8] = 'assignedAt', opt(session.assignedAt)
  fields[n + 9], fields[n + 10] = 'endedAt', opt(session.endedAt)
  fields[n + 11], fields[n + 12] = 'endReason', session.endReason or ''
  fields[n + 13], fields[n + 14] = 'leaseExpiresAt', fmt(session.leaseExpiresAt)
  fields[n + 15], fields[n + 16] = 'migrations', fmt(session.migrations)
  fields[n + 17], fields[n + 18] = 'node', node
  fields[n + 19], fields[n + 20] = 'gpuIndex', index
  fields[n + 21], fields[n + 22] = 'model', model
  fields[n + 23], fields[n + 24] = 'cost', cost
  redis.call('HSET', session_key(session.id), unpack(fields))
end

-- The session as the TypeScript side reads it: the first 13 SESSION_FIELDS, in order.
local function session_reply(session)
  local node, index, model, cost = placement_fields(session.placement)
  return {
    session.spec, session.state, opt(session.queuedAt), opt(session.queueDeadline), opt(session.assignedAt),
    opt(session.endedAt), session.endReason or '', fmt(session.leaseExpiresAt), fmt(session.migrations),
    node, index, model, cost,
  }
end

local function session_deadline(session)
  if session.state == 'queued' and session.queueDeadline ~= nil then
    return math.min(session.leaseExpiresAt, session.queueDeadline)
  end
  return session.leaseExpiresAt
end

local function class_rank(class)
  for i, name in ipairs(CLASSES) do
    if name == class then
      return i
    end
  end
  return nil
end

local function queue_key(class)
  local rank = class_rank(class)
  if not rank then
    fail('VCA_ERR_UNKNOWN_PRIORITY', 'Priority class "' .. tostring(class) .. '" is not configured')
  end
  return KEYS[QUEUE_KEY_OFFSET + rank]
end

local function queue_length()
  local total = 0
  for i = 1, #CLASSES do
    total = total + redis.call('ZCARD', KEYS[QUEUE_KEY_OFFSET + i])
  end
  return total
end

-- 1-based position across classes: sizes of the higher classes plus the rank within its own.
local function queue_position(session)
  local rank = class_rank(session.priority)
  local position = 0
  for i = 1, rank - 1 do
    position = position + redis.call('ZCARD', KEYS[QUEUE_KEY_OFFSET + i])
  end
  return position + redis.call('ZRANK', KEYS[QUEUE_KEY_OFFSET + rank], session.id) + 1
end

-- Back of its class, or the front (a migrated session waits first): below the class's lowest score.
local function enqueue(session, at_front)
  local key = queue_key(session.priority)
  local score
  if at_front then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #first > 0 then
      score = tonumber(first[2]) - 1
    end
  end
  if score == nil then
    score = redis.call('INCR', K_SEQ)
  end
  redis.call('ZADD', key, score, session.id)
end

-- Reserves `cost` on the GPU `g` (as loaded by pick) of `node` for the session (not saved here).
local function commit(g, node, session, cost, now)
  local gid = g.id
  local seq = redis.call('INCR', K_SEQ)
  if redis.call('ZADD', gpu_sessions_key(gid), 'NX', seq, session.id) == 0 then
    fail('VCA_ERR_INTERNAL', 'session ' .. session.id .. ' is already committed on ' .. gid)
  end
  g.cg = g.cg + cost.gpu
  g.ce = g.ce + cost.encoder
  g.cv = g.cv + cost.vramMiB
  g.cs = g.cs + cost.encoderSessions
  session.state = 'assigned'
  session.assignedAt = now
  session.placement = { nodeId = g.node, gpuIndex = g.index, model = g.model, cost = cost }
  save_committed(node, g)
end

-- Frees the session's GPU reservation; exactly once because the member is removed here. Returns the
-- node it ran on (load_node table) when it freed something.
local function release(session)
  local placement = session.placement
  if placement == nil then
    return
  end
  session.placement = nil
  local gid = gpu_id(placement.nodeId, placement.gpuIndex)
  if redis.call('ZREM', gpu_sessions_key(gid), session.id) == 0 then
    return
  end
  local g = load_gpu(gid)
  if not g then
    return
  end
  local cost = placement.cost
  g.cg = g.cg - cost.gpu
  g.ce = g.ce - cost.encoder
  g.cv = g.cv - cost.vramMiB
  g.cs = g.cs - cost.encoderSessions
  local node = load_node(placement.nodeId)
  if node then
    save_committed(node, g)
  else
    redis.call('HSET', gpu_key(gid), unpack(committed_fields(g)))
  end
  return node
end

-- `node`: the node as loaded now, when the caller has it.
local function drain_if_empty(node_id, now, node)
  node = node or load_node(node_id)
  if not node or node.state ~= 'draining' or node_session_count(node) > 0 then
    return false
  end
  transition(node, 'drained', now)
  return node_dump(node_id)
end

-- Ends a live session: leaves the queue or releases its GPU, keeps the record (with its placement)
-- readable for RETAIN_ENDED_MS. Returns {session reply, drained node dump or false}.
local function end_session(session, reason, now)
  local placement = session.placement
  if session.state == 'queued' and reason == 'released' then
    -- Leaving the queue: the session never held a GPU.
    reason = 'cancelled'
  end
  if session.state == 'queued' then
    local rank = class_rank(session.priority)
    if rank then
      redis.call('ZREM', KEYS[QUEUE_KEY_OFFSET + rank], session.id)
    end
  end
  local node = release(session)
  session.placement = placement
  session.state = 'ended'
  session.endedAt = now
  session.endReason = reason
  save_session(session)
  redis.call('ZADD', K_DEADLINES, fmt(now + RETAIN_ENDED_MS), session.id)
  local drained = false
  if placement then
    drained = drain_if_empty(placement.nodeId, now, node)
  end
  return { session_reply(session), drained }
end

-- Shape of a request: sessions of one shape (costs, region, labels) compete for exactly the same GPUs.
local function shape_key(session)
  return session.pick .. '|' .. (session.region and (':' .. session.region) or '') .. '|' .. session.labels
end
