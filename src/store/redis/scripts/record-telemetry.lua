-- record-telemetry: applies one telemetry report of a node (values already converted to ppm/MiB).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id, [3] arrival time (ms), [4] the time the samples
--   describe (ms, src/fleet/effective-load.ts sampleReference), [5] covered-until (that time less the
--   settle time: sessions placed at or before it are in the samples), [6..] the samples, 10 arguments
--   each: index (-1 when not a number), mg, me, mv, ms, memoryTotal, temperature, throttle, uuid, name, ''
--   for an unknown value (memoryTotal, uuid, name: '' keeps the previous value).
-- Returns: the node dump. Errors: VCA_ERR_NODE_NOT_FOUND, VCA_ERR_GPU_NOT_FOUND (nothing changed).
local node_id = ARGV[2]
local now = tonumber(ARGV[3])
local covered_until = tonumber(ARGV[5])
local node = F.require_node(node_id)
for at = 6, #ARGV, 10 do
  local index = tonumber(ARGV[at])
  if index == nil or index < 0 or index >= node.gpu_count or index ~= math.floor(index) then
    F.fail('VCA_ERR_GPU_NOT_FOUND', 'Node "' .. node_id .. '" was registered with ' .. node.gpu_count
      .. ' GPU(s); index ' .. ARGV[at] .. ' does not exist')
  end
end
for at = 6, #ARGV, 10 do
  local gid = F.gpu_id(node_id, tonumber(ARGV[at]))
  local key = F.gpu_key(gid)
  local fields = { 'mg', ARGV[at + 1], 'me', ARGV[at + 2], 'mv', ARGV[at + 3], 'ms', ARGV[at + 4],
    'temperature', ARGV[at + 6], 'throttle', ARGV[at + 7], 'telemetryAt', ARGV[3], 'stale', '0',
    'sampledAt', ARGV[4] }
  if ARGV[at + 5] ~= '' then
    fields[#fields + 1] = 'memoryTotal'
    fields[#fields + 1] = ARGV[at + 5]
  end
  if ARGV[at + 8] ~= '' then
    fields[#fields + 1] = 'uuid'
    fields[#fields + 1] = ARGV[at + 8]
  end
  if ARGV[at + 9] ~= '' then
    fields[#fields + 1] = 'name'
    fields[#fields + 1] = ARGV[at + 9]
  end
  -- Sessions placed at or before covered_until are in this sample now: no longer pending.
  local pending_key = F.gpu_pending_key(gid)
  local covered = redis.call('ZRANGEBYSCORE', pending_key, '-inf', covered_until)
  if #covered > 0 then
    local g = F.load_gpu(gid)
    for _, id in ipairs(covered) do
      local session = F.load_session(id)
      if session and session.placement then
        F.add_pending(g, session.placement.cost, -1)
      end
    end
    redis.call('ZREMRANGEBYSCORE', pending_key, '-inf', covered_until)
    local pending = { 'pg', F.fmt(g.pg), 'pe', F.fmt(g.pe), 'pv', F.fmt(g.pv), 'ps', F.fmt(g.ps) }
    for _, value in ipairs(pending) do
      fields[#fields + 1] = value
    end
  end
  -- With no session, the VRAM it measures is its own reserve (lib/gpus.lua; FleetState's idleReserve).
  local mv = tonumber(ARGV[at + 3])
  if mv ~= nil and redis.call('ZCARD', F.gpu_sessions_key(gid)) == 0 then
    local state = redis.call('HMGET', key, 'rf', 'memoryTotal')
    local floor = tonumber(state[1]) or 0
    local total = tonumber(ARGV[at + 5]) or tonumber(state[2]) or floor
    fields[#fields + 1] = 'rv'
    fields[#fields + 1] = F.fmt(math.min(math.max(floor, mv), math.max(floor, total)))
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('ZADD', F.K_FRESH, ARGV[3], gid)
end
local gpus = F.node_gpus(node)
if node.state == 'provisioning' or node.state == 'unhealthy' then
  for _, g in ipairs(gpus) do
    if not g.stale and g.telemetry_at ~= nil then
      F.transition(node, 'ready', now)
      gpus = nil
      break
    end
  end
end
if gpus then
  -- refresh_node, with the GPUs just read (a transition refreshed the node already).
  local in_use = F.encoder_sessions_in_use(gpus)
  for _, g in ipairs(gpus) do
    F.index_gpu(node, g, in_use)
  end
end
return F.node_dump(node_id)
