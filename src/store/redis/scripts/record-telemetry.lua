-- record-telemetry: applies one telemetry report of a node (values already converted to ppm/MiB).
-- KEYS: the prelude's fixed keys (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings JSON, [2] node id, [3] arrival time (ms), [4] samples JSON: an array of
--   [index, mg, me, mv, ms, memoryTotal, temperature, throttle, uuid, name], '' for an unknown value
--   (memoryTotal, uuid, name: '' keeps the previous value).
-- Returns: the node dump. Errors: VCA_ERR_NODE_NOT_FOUND, VCA_ERR_GPU_NOT_FOUND (nothing changed).
local node_id = ARGV[2]
local now = tonumber(ARGV[3])
local node = require_node(node_id)
local samples = cjson.decode(ARGV[4])
for _, sample in ipairs(samples) do
  local index = sample[1]
  if type(index) ~= 'number' or index < 0 or index >= node.gpu_count or index ~= math.floor(index) then
    fail('VCA_ERR_GPU_NOT_FOUND', 'Node "' .. node_id .. '" was registered with ' .. node.gpu_count
      .. ' GPU(s); index ' .. tostring(index) .. ' does not exist')
  end
end
for _, sample in ipairs(samples) do
  local gid = gpu_id(node_id, sample[1])
  local key = gpu_key(gid)
  redis.call('HSET', key, 'mg', sample[2], 'me', sample[3], 'mv', sample[4], 'ms', sample[5],
    'temperature', sample[7], 'throttle', sample[8], 'telemetryAt', now, 'stale', '0')
  if sample[6] ~= '' then
    redis.call('HSET', key, 'memoryTotal', sample[6])
  end
  if sample[9] ~= '' then
    redis.call('HSET', key, 'uuid', sample[9])
  end
  if sample[10] ~= '' then
    redis.call('HSET', key, 'name', sample[10])
  end
  redis.call('ZADD', K_FRESH, now, gid)
end
if node.state == 'provisioning' or node.state == 'unhealthy' then
  for i = 0, node.gpu_count - 1 do
    local g = load_gpu(gpu_id(node_id, i))
    if not g.stale and g.telemetry_at ~= nil then
      transition(node, 'ready', now)
      break
    end
  end
end
refresh_node(node)
return node_dump(node_id)
