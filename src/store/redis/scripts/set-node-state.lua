-- set-node-state: moves a node along its lifecycle; draining an empty node drains it at once.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id, [3] target state, [4] now (ms), [5] drain deadline
--   ('' = none).
-- Returns: the node dump. Errors: VCA_ERR_NODE_NOT_FOUND, VCA_ERR_NODE_STATE (nothing changed).
local node_id = ARGV[2]
local to = ARGV[3]
local now = tonumber(ARGV[4])
local node = F.require_node(node_id)
if to == 'removed' then
  F.fail('VCA_ERR_NODE_STATE', 'Use removeNode to remove a node')
end
local sessions = F.node_session_count(node)
if to == 'drained' and sessions > 0 then
  F.fail('VCA_ERR_NODE_STATE', 'Node "' .. node_id .. '" still hosts ' .. sessions .. ' session(s)')
end
F.check_transition(node, to)
F.transition(node, to, now)
if to == 'draining' then
  redis.call('HSET', F.node_key(node_id), 'drainDeadline', ARGV[5])
  if sessions == 0 then
    F.transition(node, 'drained', now)
  end
end
return F.node_dump(node_id)
