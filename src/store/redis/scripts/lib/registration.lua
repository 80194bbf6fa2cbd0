-- registration: check_registration (what registering a node would refuse, writing nothing) and
-- add_node (the writes), apart so that register-nodes.lua checks a whole batch before its first write.
-- requires: base, keys, settings, nodes, pools, lifecycle
-- KEYS, ARGV: none beyond lib/keys.lua and the settings (lib/settings.lua).

-- 'new', 'known' (registered with this identity: a replay), or a refusal {code, message}, as
-- FleetState.checkRegistration decides. `pending`: the identity of the same id earlier in one batch.
function F.check_registration(node_id, identity, unknown_model, pending)
  local known = redis.call('HGET', F.node_key(node_id), 'identity') or pending
  if known then
    if known ~= identity then
      return { 'VCA_ERR_NODE_CONFLICT', 'Node "' .. node_id
        .. '" is already registered with another host, port, protocol or GPU set; drain and remove it first' }
    end
    return 'known'
  end
  if unknown_model ~= '' then
    return { 'VCA_ERR_UNKNOWN_GPU_MODEL', unknown_model }
  end
  return 'new'
end

-- Adds a node check_registration found new: its hash, its GPUs' hashes, its place in registration order;
-- ready at once when telemetry is not required. `node` is the argument list of one registration
-- (register-node.lua): id, identity, registration JSON, labels JSON, region, system encoder limit, GPUs JSON.
function F.add_node(node, now)
  local node_id = node[1]
  local gpus = cjson.decode(node[7])
  redis.call('HSET', F.node_key(node_id),
    'id', node_id,
    'identity', node[2],
    'registration', node[3],
    'labels', node[4],
    'region', node[5],
    'systemEncoderLimit', node[6],
    'state', 'provisioning',
    'stateChangedAt', now,
    'registeredAt', now,
    'drainDeadline', '',
    'gpuCount', #gpus,
    'tg', '')
  for i, gpu in ipairs(gpus) do
    local index = i - 1
    local gid = F.gpu_id(node_id, index)
    redis.call('DEL', F.gpu_sessions_key(gid), F.gpu_pending_key(gid))
    redis.call('HSET', F.gpu_key(gid),
      'node', node_id, 'index', index, 'model', gpu.model,
      'hostable', gpu.hostable, 'encoderLimit', gpu.encoderLimit, 'encoderScope', gpu.encoderScope,
      'throttleTemperature', gpu.throttleTemperature, 'memoryTotal', gpu.memoryTotal, 'modelVram', gpu.memoryTotal,
      'cg', 0, 'ce', 0, 'cv', 0, 'cs', 0, 'pg', 0, 'pe', 0, 'pv', 0, 'ps', 0,
      'rf', gpu.reserveFloor, 'rv', gpu.reserveFloor, 'sampledAt', '',
      'mg', '', 'me', '', 'mv', '', 'ms', '',
      'temperature', '', 'throttle', '0', 'uuid', '', 'name', '', 'telemetryAt', '', 'stale', '0',
      'eligible', '0', 'pool', '')
  end
  redis.call('ZADD', F.K_NODES, redis.call('INCR', F.K_SEQ), node_id)
  local loaded = F.load_node(node_id)
  if not F.REQUIRE_TELEMETRY then
    F.transition(loaded, 'ready', now)
  else
    F.refresh_node(loaded)
  end
end
