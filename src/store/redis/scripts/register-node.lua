-- register-node: registers a node and its GPUs, or answers the existing node for a replay.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id, [3] now (ms), [4] identity (JSON of host, port,
--   protocol and GPU set, compared on re-registration), [5] registration JSON, [6] labels JSON, [7] region
--   label ('' when none), [8] system encoder session limit ('' when none), [9] GPUs JSON: an array of {model,
--   hostable, encoderLimit, encoderScope, throttleTemperature, memoryTotal} with '' for null, or '' when a
--   model is unknown, [10] the unknown-model message ('' when every model is known).
-- Returns: {created (1 or 0), node dump}. Errors: VCA_ERR_NODE_CONFLICT, VCA_ERR_UNKNOWN_GPU_MODEL.
local node_id = ARGV[2]
local now = tonumber(ARGV[3])
local key = F.node_key(node_id)
local identity = redis.call('HGET', key, 'identity')
if identity then
  if identity ~= ARGV[4] then
    F.fail('VCA_ERR_NODE_CONFLICT', 'Node "' .. node_id
      .. '" is already registered with another host, port, protocol or GPU set; drain and remove it first')
  end
  return { 0, F.node_dump(node_id) }
end
if ARGV[10] ~= '' then
  F.fail('VCA_ERR_UNKNOWN_GPU_MODEL', ARGV[10])
end
local gpus = cjson.decode(ARGV[9])
redis.call('HSET', key,
  'id', node_id,
  'identity', ARGV[4],
  'registration', ARGV[5],
  'labels', ARGV[6],
  'region', ARGV[7],
  'systemEncoderLimit', ARGV[8],
  'state', 'provisioning',
  'stateChangedAt', now,
  'registeredAt', now,
  'drainDeadline', '',
  'gpuCount', #gpus)
for i, gpu in ipairs(gpus) do
  local index = i - 1
  local gid = F.gpu_id(node_id, index)
  redis.call('DEL', F.gpu_sessions_key(gid))
  redis.call('HSET', F.gpu_key(gid),
    'node', node_id, 'index', index, 'model', gpu.model,
    'hostable', gpu.hostable, 'encoderLimit', gpu.encoderLimit, 'encoderScope', gpu.encoderScope,
    'throttleTemperature', gpu.throttleTemperature, 'memoryTotal', gpu.memoryTotal, 'modelVram', gpu.memoryTotal,
    'cg', 0, 'ce', 0, 'cv', 0, 'cs', 0,
    'mg', '', 'me', '', 'mv', '', 'ms', '',
    'temperature', '', 'throttle', '0', 'uuid', '', 'name', '', 'telemetryAt', '', 'stale', '0',
    'eligible', '0', 'pool', '')
end
redis.call('ZADD', F.K_NODES, redis.call('INCR', F.K_SEQ), node_id)
local node = F.load_node(node_id)
if not F.REQUIRE_TELEMETRY then
  F.transition(node, 'ready', now)
else
  F.refresh_node(node)
end
return { 1, F.node_dump(node_id) }
