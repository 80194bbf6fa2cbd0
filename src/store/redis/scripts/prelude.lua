-- prelude: shared helpers, prepended by scripts.ts to every script (never run on its own).
-- KEYS (every script): [1] <base>:nodes  [2] <base>:seq  [3] <base>:fresh  [4] <base>:deadlines
--   [5] <base>:pools  [6..] <base>:queue:<class>, highest class first.
--   Keys computed from data (node:<id>, gpu:<node>#<i>, gpu-sessions:..., pool-gpu/pool-enc:<pool>,
--   session:<id>, webhook:<key>) are built from the same <base> and share its hash tag `{cluster}`,
--   so on Redis Cluster they live in the slot of the declared keys.
-- ARGV (every script): [1] the store settings as JSON (capacities under headroom, temperature margin,
--   telemetry rules, priority classes, candidate bound); script arguments start at ARGV[2].
-- Errors: validation failures raise `error({err = '<VCA_ERR_CODE> <message>'})` BEFORE any write (a
--   Redis script is not rolled back), and the TypeScript side turns them into VcaErrors.
-- Numbers: committed loads are integers (ppm, MiB, sessions) changed with HINCRBY, so committed ==
--   sum of session costs holds exactly; Lua numbers are doubles, exact for integers below 2^53.

local BASE = string.sub(KEYS[1], 1, -7) -- KEYS[1] is '<base>:nodes'
local K_NODES = KEYS[1]
local K_SEQ = KEYS[2]
local K_FRESH = KEYS[3]
local K_DEADLINES = KEYS[4]
local K_POOLS = KEYS[5]
local QUEUE_KEY_OFFSET = 5

local SETTINGS = cjson.decode(ARGV[1])
local GPU_CAP = SETTINGS.gpuCapacity
local ENC_CAP = SETTINGS.encoderCapacity
local VRAM_HEADROOM = SETTINGS.vramHeadroom
local TEMPERATURE_MARGIN = SETTINGS.temperatureMarginCelsius
local REQUIRE_TELEMETRY = SETTINGS.requireTelemetry
local STALE_AFTER_MS = SETTINGS.staleAfterMs
local RETAIN_ENDED_MS = SETTINGS.retainEndedMs
local CLASSES = SETTINGS.priorityClasses
local MAX_CANDIDATES = SETTINGS.maxCandidates
local BATCH = 64
-- Pool scores are doubles; a GPU whose free share equals the need must never fall outside the range.
local SCORE_EPSILON = 1e-9
local NULL = cjson.null

local function fail(code, message)
  error({ err = code .. ' ' .. message })
end

local function is_null(value)
  return value == nil or value == NULL or value == false
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
  local h = hgetall(node_key(id))
  if not h then
    return nil
  end
  return {
    id = id,
    state = h.state,
    gpu_count = tonumber(h.gpuCount),
    system_limit = num(h.systemEncoderLimit),
    region = h.region,
    labels_json = h.labels,
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

local function load_gpu(gid)
  local h = hgetall(gpu_key(gid))
  if not h then
    return nil
  end
  return {
    id = gid,
    node = h.node,
    index = tonumber(h.index),
    model = h.model,
    hostable = h.hostable == '1',
    encoder_limit = num(h.encoderLimit),
    encoder_scope = h.encoderScope,
    throttle_temperature = tonumber(h.throttleTemperature),
    memory_total = tonumber(h.memoryTotal),
    cg = tonumber(h.cg),
    ce = tonumber(h.ce),
    cv = tonumber(h.cv),
    cs = tonumber(h.cs),
    mg = num(h.mg),
    me = num(h.me),
    mv = num(h.mv),
    ms = num(h.ms),
    temperature = num(h.temperature),
    throttle = h.throttle == '1',
    telemetry_at = num(h.telemetryAt),
    stale = h.stale == '1',
    pool = h.pool,
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

-- Puts the GPU in its pool's sorted sets (by free share on each axis) iff it is eligible.
local function index_gpu(node, g, in_use)
  local key = gpu_key(g.id)
  if is_eligible(node, g, in_use) then
    local pool = g.model .. '|' .. node.region
    redis.call('ZADD', pool_key('gpu', pool), (GPU_CAP - eff_gpu(g)) / GPU_CAP, g.id)
    redis.call('ZADD', pool_key('enc', pool), (ENC_CAP - eff_enc(g)) / ENC_CAP, g.id)
    if g.pool ~= pool then
      redis.call('SADD', K_POOLS, pool)
      redis.call('HSET', key, 'eligible', '1', 'pool', pool)
    else
      redis.call('HSET', key, 'eligible', '1')
    end
  else
    if g.pool ~= nil and g.pool ~= '' then
      redis.call('ZREM', pool_key('gpu', g.pool), g.id)
      redis.call('ZREM', pool_key('enc', g.pool), g.id)
    end
    redis.call('HSET', key, 'eligible', '0', 'pool', '')
  end
end

local function refresh_node(node)
  local gpus = node_gpus(node)
  local in_use = encoder_sessions_in_use(gpus)
  for _, g in ipairs(gpus) do
    index_gpu(node, g, in_use)
  end
end

-- GPUs on hosts with a shared encoder limit change together; others alone.
local function refresh_gpu_or_node(node, gid)
  if node.system_limit ~= nil then
    refresh_node(node)
  else
    index_gpu(node, load_gpu(gid), 0)
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
  local old = redis.call('ZRANGEBYSCORE', K_FRESH, '-inf', '(' .. string.format('%.17g', now - STALE_AFTER_MS))
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
  local count = tonumber(redis.call('HGET', node_key(node_id), 'gpuCount'))
  for i = 0, count - 1 do
    local gid = gpu_id(node_id, i)
    out[#out + 1] = redis.call('HGETALL', gpu_key(gid))
    out[#out + 1] = redis.call('ZCARD', gpu_sessions_key(gid))
  end
  return out
end

-- Placement -----------------------------------------------------------------------------------------

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
    facts = { node = node, labels = cjson.decode(node.labels_json), in_use = 0 }
    if node.system_limit ~= nil then
      facts.in_use = encoder_sessions_in_use(node_gpus(node))
    end
    nodes[g.node] = facts
  end
  if labels ~= nil then
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
  return g
end

-- Picks a GPU for a request: per pool of a model the request has a cost for (and of its region, if it
-- names one), walks the pool's sorted set of its dominant axis from the need upward (packed: best
-- fit) or from the emptiest downward (spread) in batches of 64, and keeps the first GPU that passes the
-- exact check; then the best pool's GPU by free share left on the dominant axis (packed: least,
-- spread: most). At most MAX_CANDIDATES GPUs are checked per decision: beyond that bound a request may
-- be queued although some GPU far down a pool would fit (only with thousands of GPUs that fail on VRAM,
-- labels or the secondary axis).
-- Returns the GPU (load_gpu table) and the cost on its model, or nil.
local function pick(costs, strategy, region, labels, exclude)
  local packed = strategy ~= 'spread'
  local pools = redis.call('SMEMBERS', K_POOLS)
  table.sort(pools)
  local nodes = {}
  local budget = MAX_CANDIDATES
  local best, best_cost, best_score
  for _, pool in ipairs(pools) do
    if budget <= 0 then
      break
    end
    local separator = string.find(pool, '|', 1, true)
    local model = string.sub(pool, 1, separator - 1)
    local pool_region = string.sub(pool, separator + 1)
    local cost = costs[model]
    if cost ~= nil and cost ~= NULL and (region == nil or region == pool_region) then
      local gpu_need = cost.gpu / GPU_CAP
      local enc_need = cost.encoder / ENC_CAP
      if gpu_need <= 1 and enc_need <= 1 then
        local encoder_primary = enc_need > gpu_need
        local need = encoder_primary and enc_need or gpu_need
        local key = pool_key(encoder_primary and 'enc' or 'gpu', pool)
        local low = string.format('%.17g', need - SCORE_EPSILON)
        local offset = 0
        local found = nil
        while found == nil and budget > 0 do
          local batch
          if packed then
            batch = redis.call('ZRANGEBYSCORE', key, low, '+inf', 'LIMIT', offset, BATCH)
          else
            batch = redis.call('ZREVRANGEBYSCORE', key, '+inf', low, 'LIMIT', offset, BATCH)
          end
          for _, gid in ipairs(batch) do
            budget = budget - 1
            found = candidate_fits(gid, cost, labels, exclude, nodes)
            if found ~= nil or budget <= 0 then
              break
            end
          end
          if #batch < BATCH then
            break
          end
          offset = offset + BATCH
        end
        if found ~= nil then
          local capacity = encoder_primary and ENC_CAP or GPU_CAP
          local used = encoder_primary and eff_enc(found) or eff_gpu(found)
          local score = (capacity - used) / capacity - need
          if best == nil or (packed and score < best_score) or (not packed and score > best_score) then
            best, best_cost, best_score = found, cost, score
          end
        end
      end
    end
  end
  return best, best_cost
end

-- Sessions ------------------------------------------------------------------------------------------

local function load_session(id)
  local raw = redis.call('GET', session_key(id))
  if not raw then
    return nil
  end
  return cjson.decode(raw)
end

local function save_session(session)
  redis.call('SET', session_key(session.id), cjson.encode(session))
end

local function session_deadline(session)
  if session.state == 'queued' and not is_null(session.queueDeadline) then
    return math.min(session.leaseExpiresAt, session.queueDeadline)
  end
  return session.leaseExpiresAt
end

local function request_region(session)
  if is_null(session.region) then
    return nil
  end
  return session.region
end

local function request_labels(session)
  if is_null(session.labels) then
    return nil
  end
  return session.labels
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

local function commit(g, session, cost, now)
  local gid = g.id
  local seq = redis.call('INCR', K_SEQ)
  if redis.call('ZADD', gpu_sessions_key(gid), 'NX', seq, session.id) == 0 then
    fail('VCA_ERR_INTERNAL', 'session ' .. session.id .. ' is already committed on ' .. gid)
  end
  local key = gpu_key(gid)
  redis.call('HINCRBY', key, 'cg', cost.gpu)
  redis.call('HINCRBY', key, 'ce', cost.encoder)
  redis.call('HINCRBY', key, 'cv', cost.vramMiB)
  redis.call('HINCRBY', key, 'cs', cost.encoderSessions)
  session.state = 'assigned'
  session.assignedAt = now
  session.placement = { nodeId = g.node, gpuIndex = g.index, model = g.model, cost = cost }
  refresh_gpu_or_node(load_node(g.node), gid)
end

-- Frees the session's GPU reservation; exactly once because the member is removed here.
local function release(session)
  local placement = session.placement
  if is_null(placement) then
    return
  end
  session.placement = NULL
  local gid = gpu_id(placement.nodeId, placement.gpuIndex)
  if redis.call('ZREM', gpu_sessions_key(gid), session.id) == 0 then
    return
  end
  local key = gpu_key(gid)
  local cost = placement.cost
  redis.call('HINCRBY', key, 'cg', -cost.gpu)
  redis.call('HINCRBY', key, 'ce', -cost.encoder)
  redis.call('HINCRBY', key, 'cv', -cost.vramMiB)
  redis.call('HINCRBY', key, 'cs', -cost.encoderSessions)
  local node = load_node(placement.nodeId)
  if node then
    refresh_gpu_or_node(node, gid)
  end
end

local function drain_if_empty(node_id, now)
  local node = load_node(node_id)
  if not node or node.state ~= 'draining' or node_session_count(node) > 0 then
    return false
  end
  transition(node, 'drained', now)
  return node_dump(node_id)
end

-- Ends a live session: leaves the queue or releases its GPU, keeps the record (with its placement)
-- readable for RETAIN_ENDED_MS. Returns {session JSON, drained node dump or false}.
local function end_session(session, reason, now)
  local node_id = nil
  if not is_null(session.placement) then
    node_id = session.placement.nodeId
  end
  if session.state == 'queued' then
    local rank = class_rank(session.priority)
    if rank then
      redis.call('ZREM', KEYS[QUEUE_KEY_OFFSET + rank], session.id)
    end
  end
  local placement = session.placement
  release(session)
  session.placement = placement
  if session.placement == nil then
    session.placement = NULL
  end
  session.state = 'ended'
  session.endedAt = now
  session.endReason = reason
  save_session(session)
  redis.call('ZADD', K_DEADLINES, now + RETAIN_ENDED_MS, session.id)
  local drained = false
  if node_id then
    drained = drain_if_empty(node_id, now)
  end
  return { cjson.encode(session), drained }
end

-- Shape of a request: sessions of one shape compete for exactly the same GPUs.
local function shape_key(session)
  local labels = ''
  local requested = request_labels(session)
  if requested then
    local names = {}
    for name in pairs(requested) do
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      labels = labels .. name .. '=' .. tostring(requested[name]) .. '\n'
    end
  end
  return session.game .. '|' .. tostring(session.width) .. 'x' .. tostring(session.height) .. '@'
    .. tostring(session.fps) .. '|' .. (request_region(session) or '') .. '|' .. labels
end
