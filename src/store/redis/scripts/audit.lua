-- audit: committed load per GPU with the costs of the sessions committed there, for the invariant
-- committed == sum of live session costs (summed by the caller, independently of the counters).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua).
-- Returns: {gpus, live session count, queued session count}; gpus is an array of
--   {node id, index, cg, ce, cv, cs, {session cost ('' when none) or false, ...}}.
local gpus = {}
for _, node_id in ipairs(redis.call('ZRANGE', F.K_NODES, 0, -1)) do
  local node = F.load_node(node_id)
  if node then
    for i = 0, node.gpu_count - 1 do
      local gid = F.gpu_id(node_id, i)
      local h = F.hgetall(F.gpu_key(gid))
      local costs = {}
      for _, id in ipairs(redis.call('ZRANGE', F.gpu_sessions_key(gid), 0, -1)) do
        costs[#costs + 1] = redis.call('HGET', F.session_key(id), 'cost')
      end
      gpus[#gpus + 1] = { node_id, tostring(i), h.cg, h.ce, h.cv, h.cs, costs }
    end
  end
end
local live = 0
for _, id in ipairs(redis.call('ZRANGE', F.K_DEADLINES, 0, -1)) do
  if redis.call('HGET', F.session_key(id), 'state') == 'assigned' then
    live = live + 1
  end
end
return { gpus, live, F.queue_length() }
