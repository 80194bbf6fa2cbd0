-- record-telemetry: applies one telemetry report of a node (values already converted to ppm/MiB).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id, [3] arrival time (ms), [4..] the samples, 10 arguments
--   each: index (-1 when not a number), mg, me, mv, ms, memoryTotal, temperature, throttle, uuid, name, ''
--   for an unknown value (memoryTotal, uuid, name: '' keeps the previous value).
-- Returns: the node dump. Errors: VCA_ERR_NODE_NOT_FOUND, VCA_ERR_GPU_NOT_FOUND (nothing changed).
local node_id = ARGV[2]
local now = tonumber(ARGV[3])
local node = F.require_node(node_id)
for at = 4, #ARGV, 10 do
  local index = tonumber(ARGV[at])
  if index == nil or index < 0 or index >= node.gpu_count or index ~= math.floor(index) then
    F.fail('VCA_ERR_GPU_NOT_FOUND', 'Node "' .. node_id .. '" was registered with ' .. node.gpu_count
      .. ' GPU(s); index ' .. ARGV[at] .. ' does not exist')
  end
end
for at = 4, #ARGV, 10 do
  local gid = F.gpu_id(node_id, tonumber(ARGV[at]))
  local key = F.gpu_key(gid)
  local fields = { 'mg', ARGV[at + 1], 'me', ARGV[at + 2], 'mv', ARGV[at + 3], 'ms', ARGV[at + 4],
    'temperature', ARGV[at + 6], 'throttle', ARGV[at + 7], 'telemetryAt', ARGV[3], 'stale', '0' }
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
