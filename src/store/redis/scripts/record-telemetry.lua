-- record-telemetry: applies one telemetry report of a node (values already converted to ppm/MiB).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id, [3] arrival time (ms), [4] the time the samples
--   describe (ms, src/fleet/effective-load.ts sampleReference), [5] covered-until (that time less the
--   settle time: sessions placed at or before it are in the samples), [6] the answer: 'node' (the node
--   dump), 'brief' or 'sessions' (the brief answer of lib/telemetry.lua, 'sessions' with the sessions
--   on the node), [7..] the samples, 10 arguments each: index (-1 when not a number), mg, me, mv, ms,
--   memoryTotal, temperature, throttle, uuid, name, '' for an unknown value (memoryTotal, uuid, name: ''
--   keeps the previous value).
-- Returns: the node dump, or the brief answer. Errors: VCA_ERR_NODE_NOT_FOUND, VCA_ERR_GPU_NOT_FOUND
-- (nothing changed).
-- Cost: with a brief answer and the node's telemetry guard (lib/telemetry.lua), a report that keeps
-- every GPU's eligibility reads the node's guard (one HMGET) and makes the full path's writes (one HSET
-- per GPU, one ZADD per pool sorted set with a score that moved, the freshness ZADD) without reading a
-- GPU. Otherwise (the full path) the node and each of its GPUs are read once (whole), every change is
-- made to those tables in memory, and each GPU is written with one HSET (its samples and, when a free
-- share moved, its index fields); the reply is built from the tables, not read again. Only a report that
-- makes the node ready (a transition re-indexes it) reads the node again for the reply. The full path
-- writes the guard (or clears it) for the next report.
local node_id = ARGV[2]
local mode = ARGV[6]
local brief = mode ~= 'node'
local with_sessions = mode == 'sessions'
local FIRST = 7
if brief then
  local head = redis.call('HMGET', F.node_key(node_id), 'tg', 'state', 'stateChangedAt', 'systemEncoderLimit')
  if head[1] and head[1] ~= '' then
    local reply = F.telemetry_fast(node_id, head, FIRST, with_sessions)
    if reply then
      return reply
    end
  end
end
local now = tonumber(ARGV[3])
local covered_until = tonumber(ARGV[5])
local node_flat = redis.call('HGETALL', F.node_key(node_id))
local node_hash = {}
for i = 1, #node_flat, 2 do
  node_hash[node_flat[i]] = node_flat[i + 1]
end
local node = F.load_node_from(node_id, node_hash)
-- The full path: the fast path's memory of this node no longer says what its GPUs hold.
F.forget_report(node_id)
if not node then
  F.fail('VCA_ERR_NODE_NOT_FOUND', 'Node "' .. node_id .. '" is not registered')
end
for at = FIRST, #ARGV, 10 do
  local index = tonumber(ARGV[at])
  if index == nil or index < 0 or index >= node.gpu_count or index ~= math.floor(index) then
    F.fail('VCA_ERR_GPU_NOT_FOUND', 'Node "' .. node_id .. '" was registered with ' .. node.gpu_count
      .. ' GPU(s); index ' .. ARGV[at] .. ' does not exist')
  end
end
-- Every GPU of the node as its hash (field -> value), its pending writes, its session count and
-- whether sessions still wait for a sample to cover them (after this report).
local hashes, writes, counts, gids, waiting = {}, {}, {}, {}, {}
for i = 0, node.gpu_count - 1 do
  local gid = F.gpu_id(node_id, i)
  gids[i + 1] = gid
  hashes[i + 1] = F.hgetall(F.gpu_key(gid)) or {}
  writes[i + 1] = {}
  counts[i + 1] = redis.call('ZCARD', F.gpu_sessions_key(gid))
end
-- Sets a field of GPU `slot` in memory and in its pending HSET.
local function put(slot, field, value)
  hashes[slot][field] = value
  local list = writes[slot]
  list[#list + 1] = field
  list[#list + 1] = value
end
local fresh = {}
for at = FIRST, #ARGV, 10 do
  local slot = tonumber(ARGV[at]) + 1
  local gid = gids[slot]
  local hash = hashes[slot]
  -- Sessions placed at or before covered_until are in this sample now: no longer pending.
  local pending_key = F.gpu_pending_key(gid)
  local pending_count = redis.call('ZCARD', pending_key)
  local covered = {}
  if pending_count > 0 then
    covered = redis.call('ZRANGEBYSCORE', pending_key, '-inf', covered_until)
  end
  waiting[slot] = pending_count > #covered
  local pending = nil
  if #covered > 0 then
    local g = F.load_gpu_from(gid, hash)
    for _, id in ipairs(covered) do
      local session = F.load_session(id)
      if session and session.placement then
        F.add_pending(g, session.placement.cost, -1)
      end
    end
    redis.call('ZREMRANGEBYSCORE', pending_key, '-inf', covered_until)
    pending = g
  end
  -- With no session, the VRAM it measures is its own reserve (lib/gpus.lua; FleetState's idleReserve).
  local mv = tonumber(ARGV[at + 3])
  local reserve = nil
  if mv ~= nil and counts[slot] == 0 then
    local floor = tonumber(hash.rf) or 0
    local total = tonumber(ARGV[at + 5]) or tonumber(hash.memoryTotal) or floor
    reserve = F.fmt(math.min(math.max(floor, mv), math.max(floor, total)))
  end
  put(slot, 'mg', ARGV[at + 1])
  put(slot, 'me', ARGV[at + 2])
  put(slot, 'mv', ARGV[at + 3])
  put(slot, 'ms', ARGV[at + 4])
  put(slot, 'temperature', ARGV[at + 6])
  put(slot, 'throttle', ARGV[at + 7])
  put(slot, 'telemetryAt', ARGV[3])
  put(slot, 'stale', '0')
  put(slot, 'sampledAt', ARGV[4])
  if ARGV[at + 5] ~= '' then
    put(slot, 'memoryTotal', ARGV[at + 5])
  end
  if ARGV[at + 8] ~= '' then
    put(slot, 'uuid', ARGV[at + 8])
  end
  if ARGV[at + 9] ~= '' then
    put(slot, 'name', ARGV[at + 9])
  end
  if pending then
    put(slot, 'pg', F.fmt(pending.pg))
    put(slot, 'pe', F.fmt(pending.pe))
    put(slot, 'pv', F.fmt(pending.pv))
    put(slot, 'ps', F.fmt(pending.ps))
  end
  if reserve then
    put(slot, 'rv', reserve)
  end
  fresh[#fresh + 1] = ARGV[3]
  fresh[#fresh + 1] = gid
end
if #fresh > 0 then
  redis.call('ZADD', F.K_FRESH, unpack(fresh))
end
local gpus = {}
for slot, gid in ipairs(gids) do
  gpus[slot] = F.load_gpu_from(gid, hashes[slot])
end
if node.state == 'provisioning' or node.state == 'unhealthy' then
  for _, g in ipairs(gpus) do
    if g and not g.stale and g.telemetry_at ~= nil then
      -- The transition re-indexes the node from Redis: the samples are written first.
      for slot, gid in ipairs(gids) do
        if #writes[slot] > 0 then
          redis.call('HSET', F.gpu_key(gid), unpack(writes[slot]))
        end
      end
      F.transition(node, 'ready', now)
      if brief then
        local changed_at = redis.call('HGET', F.node_key(node_id), 'stateChangedAt')
        return F.brief_reply(node_id, node.state, changed_at, '', F.node_dump(node_id), counts, with_sessions)
      end
      return F.node_dump(node_id)
    end
  end
end
-- refresh_node, with the GPUs in memory; index_gpu adds its fields to the GPU's one HSET.
local in_use = F.encoder_sessions_in_use(gpus)
local out = { node_flat }
-- The guard holds while every GPU is fresh, has telemetry and waits for no sample.
local guarded = node.state ~= 'provisioning' and node.state ~= 'unhealthy' and #gpus == node.gpu_count
local lines = {}
for slot, g in ipairs(gpus) do
  local list = writes[slot]
  local from = #list
  F.index_gpu(node, g, in_use, list)
  local hash = hashes[slot]
  for i = from + 1, #list, 2 do
    hash[list[i]] = list[i + 1]
  end
  if g.stale or g.telemetry_at == nil or waiting[slot] ~= false then
    guarded = false
  end
  if brief then
    lines[slot] = F.brief_line(g.eligible == '1' and '1' or '0', g.stale and '1' or '0',
      g.throttle and '1' or '0', hash.mg or '', hash.me or '', hash.mv or '', hash.ms or '',
      hash.memoryTotal or '', hash.rv or '', F.fmt(g.ps or 0), g.model)
  else
    local flat = {}
    for field, value in pairs(hash) do
      flat[#flat + 1] = field
      flat[#flat + 1] = value
    end
    out[#out + 1] = flat
    out[#out + 1] = counts[slot]
  end
end
local guard = ''
if guarded then
  local parts = {}
  for slot, g in ipairs(gpus) do
    parts[slot] = F.guard_line(g, hashes[slot], counts[slot])
    if not parts[slot] then
      parts = nil
      break
    end
  end
  guard = parts and table.concat(parts, ';') or ''
end
if guard ~= (node_hash.tg or '') then
  redis.call('HSET', F.node_key(node_id), 'tg', guard)
end
if not brief then
  return out
end
return F.brief_reply(node_id, node.state, node_hash.stateChangedAt, table.concat(lines, ';'), nil, counts,
  with_sessions)
