-- prelude: shared definitions, prepended by scripts.ts to every script (never run on its own).
-- Definitions only, no work beyond parsing the settings: scripts.ts keeps, per script, only the
-- top-level definitions the script uses (directly or through other definitions), so a script pays for
-- what it needs. Every top-level definition starts at column 0 with `F.<name> =` or
-- `function F.<name>(` and runs until the next one; a definition may only use definitions above it.
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

-- Every definition is a field of the one local table F, not a local of its own: a Lua 5.1 closure
-- looks up each local it captures in the list of captured locals, so with one local per definition
-- the ~70 definitions a script runs cost it ~15 us per call just to create; with F they cost ~3 us.
local F = {}

F.BASE = string.sub(KEYS[1], 1, -7) -- KEYS[1] is '<base>:nodes'
F.K_NODES = KEYS[1]
F.K_SEQ = KEYS[2]
F.K_FRESH = KEYS[3]
F.K_DEADLINES = KEYS[4]
F.K_POOLS = KEYS[5]
-- Draining node ids by registration sequence: read every tick by every instance, so it must not
-- cost a read of every node.
F.K_DRAINING = F.BASE .. ':draining'
F.QUEUE_KEY_OFFSET = 5

F.SETTINGS = (function()
  local values = {}
  for value in string.gmatch(ARGV[1], '([^\n]*)\n') do
    values[#values + 1] = value
  end
  return values
end)()
F.GPU_CAP = tonumber(F.SETTINGS[1])
F.ENC_CAP = tonumber(F.SETTINGS[2])
F.VRAM_HEADROOM = tonumber(F.SETTINGS[3])
F.TEMPERATURE_MARGIN = tonumber(F.SETTINGS[4])
F.REQUIRE_TELEMETRY = F.SETTINGS[5] == '1'
F.STALE_AFTER_MS = tonumber(F.SETTINGS[6])
F.RETAIN_ENDED_MS = tonumber(F.SETTINGS[7])
F.MAX_CANDIDATES = tonumber(F.SETTINGS[8])
F.CLASSES = { unpack(F.SETTINGS, 9) }
F.BATCH = 64
-- The first batch of a pool walk is small: a packed walk usually takes its first candidate.
F.FIRST_BATCH = 2
-- Pool scores are doubles; a GPU whose free share equals the need must never fall outside the range.
F.SCORE_EPSILON = 1e-9

function F.fail(code, message)
  error({ err = code .. ' ' .. message })
end

function F.fmt(value)
  return string.format('%.17g', value)
end

function F.node_key(id)
  return F.BASE .. ':node:' .. id
end
function F.gpu_id(node_id, index)
  return node_id .. '#' .. string.format('%d', index)
end
function F.gpu_key(gid)
  return F.BASE .. ':gpu:' .. gid
end
function F.gpu_sessions_key(gid)
  return F.BASE .. ':gpu-sessions:' .. gid
end
function F.session_key(id)
  return F.BASE .. ':session:' .. id
end
function F.pool_key(axis, pool)
  return F.BASE .. ':pool-' .. axis .. ':' .. pool
end

function F.num(value)
  if value == nil or value == false or value == '' then
    return nil
  end
  return tonumber(value)
end

function F.hgetall(key)
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

function F.load_node(id)
  local h = redis.call('HMGET', F.node_key(id), 'state', 'gpuCount', 'systemEncoderLimit', 'region', 'labels')
  if not h[2] then
    return nil
  end
  return {
    id = id,
    state = h[1],
    gpu_count = tonumber(h[2]),
    system_limit = F.num(h[3]),
    region = h[4],
    labels_json = h[5],
  }
end

function F.require_node(id)
  local node = F.load_node(id)
  if not node then
    F.fail('VCA_ERR_NODE_NOT_FOUND', 'Node "' .. id .. '" is not registered')
  end
  return node
end

-- GPUs ----------------------------------------------------------------------------------------------

-- The GPU hash fields placement and eligibility read (uuid and name are only for views).
function F.load_gpu(gid)
  local h = redis.call('HMGET', F.gpu_key(gid),
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
    encoder_limit = F.num(h[5]),
    encoder_scope = h[6],
    throttle_temperature = tonumber(h[7]),
    memory_total = tonumber(h[8]),
    cg = tonumber(h[9]),
    ce = tonumber(h[10]),
    cv = tonumber(h[11]),
    cs = tonumber(h[12]),
    mg = F.num(h[13]),
    me = F.num(h[14]),
    mv = F.num(h[15]),
    ms = F.num(h[16]),
    temperature = F.num(h[17]),
    throttle = h[18] == '1',
    telemetry_at = F.num(h[19]),
    stale = h[20] == '1',
    pool = h[21],
    eligible = h[22],
    fg = h[23],
    fe = h[24],
  }
end

-- Effective load: max(committed, measured); an unknown measure counts as committed.
function F.eff_gpu(g)
  return math.max(g.cg, g.mg or 0)
end
function F.eff_enc(g)
  return math.max(g.ce, g.me or 0)
end
function F.eff_vram(g)
  return math.max(g.cv, g.mv or 0)
end
function F.eff_sessions(g)
  return math.max(g.cs, g.ms or 0)
end

function F.node_gpus(node)
  local gpus = {}
  for i = 0, node.gpu_count - 1 do
    gpus[#gpus + 1] = F.load_gpu(F.gpu_id(node.id, i))
  end
  return gpus
end

function F.encoder_sessions_in_use(gpus)
  local total = 0
  for _, g in ipairs(gpus) do
    total = total + F.eff_sessions(g)
  end
  return total
end

function F.node_session_count(node)
  local total = 0
  for i = 0, node.gpu_count - 1 do
    total = total + redis.call('ZCARD', F.gpu_sessions_key(F.gpu_id(node.id, i)))
  end
  return total
end

-- Same rules as ClusterState.isEligible.
function F.is_eligible(node, g, in_use)
  if node.state ~= 'ready' or not g.hostable then
    return false
  end
  if g.stale or (g.telemetry_at == nil and F.REQUIRE_TELEMETRY) then
    return false
  end
  if g.throttle then
    return false
  end
  if g.temperature ~= nil and g.temperature >= g.throttle_temperature - F.TEMPERATURE_MARGIN then
    return false
  end
  local session_capacity = math.huge
  if g.encoder_scope == 'gpu' and g.encoder_limit ~= nil then
    session_capacity = g.encoder_limit
  end
  if F.eff_sessions(g) >= session_capacity then
    return false
  end
  if node.system_limit ~= nil and in_use >= node.system_limit then
    return false
  end
  return true
end

-- The committed load of `g` as HSET arguments.
function F.committed_fields(g)
  return { 'cg', F.fmt(g.cg), 'ce', F.fmt(g.ce), 'cv', F.fmt(g.cv), 'cs', F.fmt(g.cs) }
end

-- Puts the GPU in its pool's sorted sets (by free share on each axis) iff it is eligible. The hash
-- remembers the indexed scores (fg, fe), so an unchanged GPU costs no write. `fields`: other GPU hash
-- fields to write in the same HSET (nil when none).
function F.index_gpu(node, g, in_use, fields)
  local key = F.gpu_key(g.id)
  fields = fields or {}
  if F.is_eligible(node, g, in_use) then
    local pool = g.model .. '|' .. node.region
    local free_gpu = F.fmt((F.GPU_CAP - F.eff_gpu(g)) / F.GPU_CAP)
    local free_enc = F.fmt((F.ENC_CAP - F.eff_enc(g)) / F.ENC_CAP)
    if not (g.eligible == '1' and g.pool == pool and g.fg == free_gpu and g.fe == free_enc) then
      redis.call('ZADD', F.pool_key('gpu', pool), free_gpu, g.id)
      redis.call('ZADD', F.pool_key('enc', pool), free_enc, g.id)
      if g.pool ~= pool then
        redis.call('SADD', F.K_POOLS, pool)
      end
      local n = #fields
      fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'eligible', '1', 'pool', pool
      fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'fg', free_gpu, 'fe', free_enc
      g.eligible, g.pool, g.fg, g.fe = '1', pool, free_gpu, free_enc
    end
  elseif not (g.eligible == '0' and (g.pool == '' or not g.pool)) then
    if g.pool and g.pool ~= '' then
      redis.call('ZREM', F.pool_key('gpu', g.pool), g.id)
      redis.call('ZREM', F.pool_key('enc', g.pool), g.id)
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

function F.refresh_node(node)
  local gpus = F.node_gpus(node)
  local in_use = F.encoder_sessions_in_use(gpus)
  for _, g in ipairs(gpus) do
    F.index_gpu(node, g, in_use)
  end
end

-- After the committed load of `g` (as loaded, then changed in memory) changed: writes it, and
-- re-indexes the GPU, or its whole node when its GPUs share an encoder session limit (they change
-- together).
function F.save_committed(node, g)
  if node.system_limit ~= nil then
    redis.call('HSET', F.gpu_key(g.id), unpack(F.committed_fields(g)))
    F.refresh_node(node)
  else
    F.index_gpu(node, g, 0, F.committed_fields(g))
  end
end

-- Node lifecycle ------------------------------------------------------------------------------------

F.ALLOWED_TRANSITIONS = {
  provisioning = { ready = true, unhealthy = true, draining = true, removed = true },
  ready = { unhealthy = true, draining = true, removed = true },
  unhealthy = { ready = true, draining = true, removed = true },
  draining = { ready = true, drained = true, removed = true },
  drained = { removed = true },
  removed = {},
}

function F.check_transition(node, to)
  if node.state == to then
    return
  end
  local allowed = F.ALLOWED_TRANSITIONS[node.state]
  if not allowed or not allowed[to] then
    F.fail('VCA_ERR_NODE_STATE', 'Node "' .. node.id .. '" cannot go from ' .. node.state .. ' to ' .. to)
  end
end

function F.delete_node(node)
  for i = 0, node.gpu_count - 1 do
    local gid = F.gpu_id(node.id, i)
    local pool = redis.call('HGET', F.gpu_key(gid), 'pool')
    if pool and pool ~= '' then
      redis.call('ZREM', F.pool_key('gpu', pool), gid)
      redis.call('ZREM', F.pool_key('enc', pool), gid)
    end
    redis.call('ZREM', F.K_FRESH, gid)
    redis.call('DEL', F.gpu_key(gid), F.gpu_sessions_key(gid))
  end
  redis.call('DEL', F.node_key(node.id))
  redis.call('ZREM', F.K_DRAINING, node.id)
  redis.call('ZREM', F.K_NODES, node.id)
end

-- Same as ClusterState.transition: validates first, so a refused move writes nothing.
function F.transition(node, to, now)
  if node.state == to then
    return
  end
  F.check_transition(node, to)
  node.state = to
  if to == 'removed' then
    F.delete_node(node)
    return
  end
  if to ~= 'draining' then
    redis.call('HSET', F.node_key(node.id), 'state', to, 'stateChangedAt', now, 'drainDeadline', '')
    redis.call('ZREM', F.K_DRAINING, node.id)
  else
    redis.call('HSET', F.node_key(node.id), 'state', to, 'stateChangedAt', now)
    redis.call('ZADD', F.K_DRAINING, redis.call('ZSCORE', F.K_NODES, node.id), node.id)
  end
  F.refresh_node(node)
end

-- Marks GPUs whose telemetry arrived before now - staleAfterMs; a ready node whose every GPU went
-- silent becomes unhealthy (its sessions keep running).
function F.sweep_stale(now)
  local old = redis.call('ZRANGEBYSCORE', F.K_FRESH, '-inf', '(' .. F.fmt(now - F.STALE_AFTER_MS))
  if #old == 0 then
    return
  end
  local touched, order = {}, {}
  for _, gid in ipairs(old) do
    redis.call('ZREM', F.K_FRESH, gid)
    redis.call('HSET', F.gpu_key(gid), 'stale', '1')
    local node_id = redis.call('HGET', F.gpu_key(gid), 'node')
    if node_id and not touched[node_id] then
      touched[node_id] = true
      order[#order + 1] = node_id
    end
  end
  for _, node_id in ipairs(order) do
    local node = F.load_node(node_id)
    if node then
      local all_stale = true
      for i = 0, node.gpu_count - 1 do
        if redis.call('HGET', F.gpu_key(F.gpu_id(node_id, i)), 'stale') ~= '1' then
          all_stale = false
          break
        end
      end
      if node.state == 'ready' and all_stale then
        F.transition(node, 'unhealthy', now)
      else
        F.refresh_node(node)
      end
    end
  end
end

-- A node as the TypeScript side builds its NodeView: {node hash, gpu hash, session count, ...}.
function F.node_dump(node_id)
  local flat = redis.call('HGETALL', F.node_key(node_id))
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
    local gid = F.gpu_id(node_id, i)
    out[#out + 1] = redis.call('HGETALL', F.gpu_key(gid))
    out[#out + 1] = redis.call('ZCARD', F.gpu_sessions_key(gid))
  end
  return out
end

-- Placement -----------------------------------------------------------------------------------------

-- A cost vector from its '<gpu>,<encoder>,<vram>,<sessions>' form.
function F.parse_cost(text)
  local g, e, v, s = string.match(text, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
  return { gpu = tonumber(g), encoder = tonumber(e), vramMiB = tonumber(v), encoderSessions = tonumber(s) }
end

function F.cost_text(cost)
  return F.fmt(cost.gpu) .. ',' .. F.fmt(cost.encoder) .. ',' .. F.fmt(cost.vramMiB) .. ',' .. F.fmt(cost.encoderSessions)
end

-- The cost on `model` from a session's pick costs ('\n<model>\t<cost>\n...'), or nil.
function F.cost_on(costs, model)
  local at = string.find(costs, '\n' .. model .. '\t', 1, true)
  if not at then
    return nil
  end
  local from = at + #model + 2
  return F.parse_cost(string.sub(costs, from, string.find(costs, '\n', from, true) - 1))
end

-- Exact check, as PlacementIndex.allowed + fits: labels, excluded node, every dimension under headroom,
-- per-GPU and per-system encoder session limits. `nodes` caches node facts for one decision.
function F.candidate_fits(gid, cost, labels, exclude, nodes)
  local g = F.load_gpu(gid)
  if not g then
    return nil
  end
  if exclude ~= nil and g.node == exclude then
    return nil
  end
  local facts = nodes[g.node]
  if not facts then
    local node = F.load_node(g.node)
    if not node then
      return nil
    end
    facts = { node = node, in_use = 0 }
    if node.system_limit ~= nil then
      facts.in_use = F.encoder_sessions_in_use(F.node_gpus(node))
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
  if F.eff_gpu(g) + cost.gpu > F.GPU_CAP then
    return nil
  end
  if F.eff_enc(g) + cost.encoder > F.ENC_CAP then
    return nil
  end
  if F.eff_vram(g) + cost.vramMiB > math.floor(F.VRAM_HEADROOM * g.memory_total) then
    return nil
  end
  if g.encoder_scope == 'gpu' and g.encoder_limit ~= nil and F.eff_sessions(g) + cost.encoderSessions > g.encoder_limit then
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
function F.pick(session, strategy, exclude)
  local packed = strategy ~= 'spread'
  local region = session.region
  local labels = nil
  if session.labels ~= '' then
    labels = cjson.decode(session.labels)
  end
  local pools = redis.call('SMEMBERS', F.K_POOLS)
  table.sort(pools)
  -- Reads the cursor's next batch of ids with their free share on the cursor's axis, position reset.
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
    cursor.size = F.BATCH
  end
  local cursors = {}
  for _, pool in ipairs(pools) do
    local separator = string.find(pool, '|', 1, true)
    local model = string.sub(pool, 1, separator - 1)
    local cost = nil
    if region == nil or region == string.sub(pool, separator + 1) then
      cost = F.cost_on(session.pick, model)
    end
    if cost ~= nil then
      local gpu_need = cost.gpu / F.GPU_CAP
      local enc_need = cost.encoder / F.ENC_CAP
      if gpu_need <= 1 and enc_need <= 1 then
        local encoder_primary = enc_need > gpu_need
        local need = encoder_primary and enc_need or gpu_need
        local cursor = {
          key = F.pool_key(encoder_primary and 'enc' or 'gpu', pool),
          low = F.fmt(need - F.SCORE_EPSILON),
          need = need,
          cost = cost,
          offset = 0,
          size = F.FIRST_BATCH,
        }
        fill(cursor)
        if #cursor.batch > 0 then
          cursors[#cursors + 1] = cursor
        end
      end
    end
  end
  local nodes = {}
  for _ = 1, F.MAX_CANDIDATES do
    local best, best_left = nil, nil
    for _, cursor in ipairs(cursors) do
      -- Refilled only when needed: an accepted candidate never costs a read of the batch after it.
      if cursor.at > #cursor.batch and not cursor.last then
        fill(cursor)
      end
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
    local found, found_node = F.candidate_fits(gid, best.cost, labels, exclude, nodes)
    if found ~= nil then
      return found, best.cost, found_node
    end
  end
  return nil
end

-- Sessions ------------------------------------------------------------------------------------------

-- The session hash, in the order the TypeScript side reads replies (SESSION_FIELDS in redis-store.ts
-- holds the first 13).
F.SESSION_FIELDS = {
  'spec', 'state', 'queuedAt', 'queueDeadline', 'assignedAt', 'endedAt', 'endReason', 'leaseExpiresAt',
  'migrations', 'node', 'gpuIndex', 'model', 'cost', 'priority', 'transport', 'region', 'labels', 'pick',
}

-- A session as a table: spec (JSON text), state, times (numbers or nil), placement (nil when none).
function F.load_session(id)
  local v = redis.call('HMGET', F.session_key(id), unpack(F.SESSION_FIELDS))
  if not v[2] then
    return nil
  end
  local session = {
    id = id,
    spec = v[1],
    state = v[2],
    queuedAt = F.num(v[3]),
    queueDeadline = F.num(v[4]),
    assignedAt = F.num(v[5]),
    endedAt = F.num(v[6]),
    endReason = v[7],
    leaseExpiresAt = tonumber(v[8]),
    migrations = tonumber(v[9]),
    priority = v[14],
    transport = v[15],
    labels = v[17],
    pick = v[18],
  }
  if v[10] ~= '' then
    session.placement = { nodeId = v[10], gpuIndex = tonumber(v[11]), model = v[12], cost = F.parse_cost(v[13]) }
  end
  if v[16] ~= '' then
    session.region = string.sub(v[16], 2) -- stored as ':' .. region; '' when the session names none
  end
  return session
end

function F.opt(value)
  if value == nil then
    return ''
  end
  return F.fmt(value)
end

-- The placement as the four hash fields node, gpuIndex, model, cost ('' each when there is none).
function F.placement_fields(placement)
  if placement == nil then
    return '', '', '', ''
  end
  return placement.nodeId, F.fmt(placement.gpuIndex), placement.model, F.cost_text(placement.cost)
end

-- Writes the fields of the session that change over its life, and `extra` field, value pairs (nil
-- when none) in the same HSET.
function F.save_session(session, extra)
  local node, index, model, cost = F.placement_fields(session.placement)
  local fields = extra or {}
  local n = #fields
  fields[n + 1], fields[n + 2] = 'state', session.state
  fields[n + 3], fields[n + 4] = 'queuedAt', F.opt(session.queuedAt)
  fields[n + 5], fields[n + 6] = 'queueDeadline', F.opt(session.queueDeadline)
  fields[n + 7], fields[n + 8] = 'assignedAt', F.opt(session.assignedAt)
  fields[n + 9], fields[n + 10] = 'endedAt', F.opt(session.endedAt)
  fields[n + 11], fields[n + 12] = 'endReason', session.endReason or ''
  fields[n + 13], fields[n + 14] = 'leaseExpiresAt', F.fmt(session.leaseExpiresAt)
  fields[n + 15], fields[n + 16] = 'migrations', F.fmt(session.migrations)
  fields[n + 17], fields[n + 18] = 'node', node
  fields[n + 19], fields[n + 20] = 'gpuIndex', index
  fields[n + 21], fields[n + 22] = 'model', model
  fields[n + 23], fields[n + 24] = 'cost', cost
  redis.call('HSET', F.session_key(session.id), unpack(fields))
end

-- The session as the TypeScript side reads it: the first 13 SESSION_FIELDS, in order.
function F.session_reply(session)
  local node, index, model, cost = F.placement_fields(session.placement)
  return {
    session.spec, session.state, F.opt(session.queuedAt), F.opt(session.queueDeadline), F.opt(session.assignedAt),
    F.opt(session.endedAt), session.endReason or '', F.fmt(session.leaseExpiresAt), F.fmt(session.migrations),
    node, index, model, cost,
  }
end

function F.session_deadline(session)
  if session.state == 'queued' and session.queueDeadline ~= nil then
    return math.min(session.leaseExpiresAt, session.queueDeadline)
  end
  return session.leaseExpiresAt
end

function F.class_rank(class)
  for i, name in ipairs(F.CLASSES) do
    if name == class then
      return i
    end
  end
  return nil
end

function F.queue_key(class)
  local rank = F.class_rank(class)
  if not rank then
    F.fail('VCA_ERR_UNKNOWN_PRIORITY', 'Priority class "' .. tostring(class) .. '" is not configured')
  end
  return KEYS[F.QUEUE_KEY_OFFSET + rank]
end

function F.queue_length()
  local total = 0
  for i = 1, #F.CLASSES do
    total = total + redis.call('ZCARD', KEYS[F.QUEUE_KEY_OFFSET + i])
  end
  return total
end

-- 1-based position across classes: sizes of the higher classes plus the rank within its own.
function F.queue_position(session)
  local rank = F.class_rank(session.priority)
  local position = 0
  for i = 1, rank - 1 do
    position = position + redis.call('ZCARD', KEYS[F.QUEUE_KEY_OFFSET + i])
  end
  return position + redis.call('ZRANK', KEYS[F.QUEUE_KEY_OFFSET + rank], session.id) + 1
end

-- Back of its class, or the front (a migrated session waits first): below the class's lowest score.
function F.enqueue(session, at_front)
  local key = F.queue_key(session.priority)
  local score
  if at_front then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #first > 0 then
      score = tonumber(first[2]) - 1
    end
  end
  if score == nil then
    score = redis.call('INCR', F.K_SEQ)
  end
  redis.call('ZADD', key, score, session.id)
end

-- Reserves `cost` on the GPU `g` (as loaded by pick) of `node` for the session (not saved here).
function F.commit(g, node, session, cost, now)
  local gid = g.id
  local seq = redis.call('INCR', F.K_SEQ)
  if redis.call('ZADD', F.gpu_sessions_key(gid), 'NX', seq, session.id) == 0 then
    F.fail('VCA_ERR_INTERNAL', 'session ' .. session.id .. ' is already committed on ' .. gid)
  end
  g.cg = g.cg + cost.gpu
  g.ce = g.ce + cost.encoder
  g.cv = g.cv + cost.vramMiB
  g.cs = g.cs + cost.encoderSessions
  session.state = 'assigned'
  session.assignedAt = now
  session.placement = { nodeId = g.node, gpuIndex = g.index, model = g.model, cost = cost }
  F.save_committed(node, g)
end

-- Frees the session's GPU reservation; exactly once because the member is removed here. Returns the
-- node it ran on (load_node table) when it freed something.
function F.release(session)
  local placement = session.placement
  if placement == nil then
    return
  end
  session.placement = nil
  local gid = F.gpu_id(placement.nodeId, placement.gpuIndex)
  if redis.call('ZREM', F.gpu_sessions_key(gid), session.id) == 0 then
    return
  end
  local g = F.load_gpu(gid)
  if not g then
    return
  end
  local cost = placement.cost
  g.cg = g.cg - cost.gpu
  g.ce = g.ce - cost.encoder
  g.cv = g.cv - cost.vramMiB
  g.cs = g.cs - cost.encoderSessions
  local node = F.load_node(placement.nodeId)
  if node then
    F.save_committed(node, g)
  else
    redis.call('HSET', F.gpu_key(gid), unpack(F.committed_fields(g)))
  end
  return node
end

-- `node`: the node as loaded now, when the caller has it.
function F.drain_if_empty(node_id, now, node)
  node = node or F.load_node(node_id)
  if not node or node.state ~= 'draining' or F.node_session_count(node) > 0 then
    return false
  end
  F.transition(node, 'drained', now)
  return F.node_dump(node_id)
end

-- Ends a live session: leaves the queue or releases its GPU, keeps the record (with its placement)
-- readable for RETAIN_ENDED_MS. Returns {session reply, drained node dump or false}.
function F.end_session(session, reason, now)
  local placement = session.placement
  if session.state == 'queued' and reason == 'released' then
    -- Leaving the queue: the session never held a GPU.
    reason = 'cancelled'
  end
  if session.state == 'queued' then
    local rank = F.class_rank(session.priority)
    if rank then
      redis.call('ZREM', KEYS[F.QUEUE_KEY_OFFSET + rank], session.id)
    end
  end
  local node = F.release(session)
  session.placement = placement
  session.state = 'ended'
  session.endedAt = now
  session.endReason = reason
  F.save_session(session)
  redis.call('ZADD', F.K_DEADLINES, F.fmt(now + F.RETAIN_ENDED_MS), session.id)
  local drained = false
  if placement then
    drained = F.drain_if_empty(placement.nodeId, now, node)
  end
  return { F.session_reply(session), drained }
end

-- Shape of a request: sessions of one shape (costs, region, labels) compete for exactly the same GPUs.
function F.shape_key(session)
  return session.pick .. '|' .. (session.region and (':' .. session.region) or '') .. '|' .. session.labels
end
