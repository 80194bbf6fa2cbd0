-- placement: picking a GPU for a session (pick) with the exact check of each candidate
-- (candidate_fits).
-- requires: base, keys, settings, nodes, gpus, costs
-- KEYS: [5] pools. ARGV: the settings (lib/settings.lua).

-- Pool walks read their sorted sets in batches of BATCH ids.
F.BATCH = 64
-- The first batch of a pool walk is small: a packed walk usually takes its first candidate.
F.FIRST_BATCH = 2
-- Pool scores are doubles; a GPU whose free share equals the need must never fall outside the range.
F.SCORE_EPSILON = 1e-9

-- What F.pick derives from a session's pick costs for a pool (F.pool_plan), by pick costs, then pool:
-- a cache in the library's Lua state, which every call shares. A plan depends only on its pick costs,
-- its pool and the settings, and the values here are set anew (emptied) when the settings or the key
-- base change; it is also emptied at PICK_PLANS_LIMIT pick costs. Sessions of one game and format
-- share their pick costs, so a pick usually finds its plans here.
F.PICK_PLANS = {}
F.PICK_PLANS_SIZE = { 0 }
F.PICK_PLANS_LIMIT = 10000

-- The walk of `pool` (separator: the position of its '|') for a session's pick costs: false when they
-- have no cost on the pool's model or it needs more than a whole GPU on an axis; else the cost on the
-- model, the sorted set of the session's dominant axis there (render, or "stream": the larger of its
-- encoder share and its VRAM share of the model, as PlacementIndex), the need on it, and the lowest
-- score to walk from (as F.fmt text). Never changed once made: F.pick's cursors only read it.
function F.pool_plan(pick, pool, separator)
  local plans = F.PICK_PLANS[pick]
  if not plans then
    if F.PICK_PLANS_SIZE[1] >= F.PICK_PLANS_LIMIT then
      F.PICK_PLANS = {}
      F.PICK_PLANS_SIZE[1] = 0
    end
    plans = {}
    F.PICK_PLANS[pick] = plans
    F.PICK_PLANS_SIZE[1] = F.PICK_PLANS_SIZE[1] + 1
  end
  local plan = plans[pool]
  if plan ~= nil then
    return plan
  end
  plan = false
  local cost, model_vram = F.cost_on(pick, string.sub(pool, 1, separator - 1))
  if cost ~= nil then
    local gpu_need = cost.gpu / F.GPU_CAP
    local encoder_need = cost.encoder / F.ENC_CAP
    local stream_need, stream_floor = encoder_need, encoder_need
    if model_vram ~= nil then
      local vram_need = cost.vramMiB / (F.VRAM_HEADROOM * model_vram)
      stream_need = math.max(encoder_need, vram_need)
      stream_floor = math.min(encoder_need, vram_need)
    end
    if gpu_need <= 1 and stream_need <= 1 then
      local stream_primary = stream_need > gpu_need
      -- The walk starts where a GPU may still fit: the stream share is the tighter of two, so a GPU
      -- fits only if it covers the smaller of the two needs (its score is then below zero).
      local low = stream_primary and stream_floor or gpu_need
      plan = {
        cost = cost,
        key = F.pool_key(stream_primary and 'stream' or 'gpu', pool),
        need = stream_primary and stream_need or gpu_need,
        low = F.fmt(low - F.SCORE_EPSILON),
      }
    end
  end
  plans[pool] = plan
  return plan
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
-- a cost for (and of its region, if it names one) is a cursor over the pool's sorted set of the
-- session's dominant axis there (F.pool_plan) walked from the need upward (packed: best fit) or from the
-- emptiest downward (spread) in batches read WITH their scores. The cursors are merged by score left
-- after the session (free share - need): the next candidate checked is always the best one of all
-- pools (packed: least left, spread: most; ties go to the pool first in name order), so the first
-- candidate that passes the exact check is the answer, and a losing pool's GPUs are never loaded.
-- Exact: every GPU whose free share on the dominant axis covers the need is checked before the
-- answer is "nothing fits" (a decision reads each such GPU at most once).
-- `region`: the region to search (nil: the session's own, if it names one; lib/latency.lua passes each
-- region of a latency plan in turn).
-- Returns the GPU (load_gpu table), the cost on its model and its node (load_node table), or nil.
function F.pick(session, strategy, exclude, region)
  local packed = strategy == 'packed'
  region = region or session.region
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
    local plan = false
    if region == nil or region == string.sub(pool, separator + 1) then
      plan = F.pool_plan(session.pick, pool, separator)
    end
    if plan then
      local cursor = {
        key = plan.key,
        low = plan.low,
        need = plan.need,
        cost = plan.cost,
        offset = 0,
        size = F.FIRST_BATCH,
      }
      fill(cursor)
      if #cursor.batch > 0 then
        cursors[#cursors + 1] = cursor
      end
    end
  end
  local nodes = {}
  while true do
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
end
