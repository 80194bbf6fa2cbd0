-- remove-node: forgets an empty node and its GPUs.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id, [3] now (ms).
-- Returns: the node dump as it was before removal, or nil when the node is unknown.
-- Errors: VCA_ERR_NODE_STATE while sessions live on it (nothing changed).
local node_id = ARGV[2]
local node = F.load_node(node_id)
if not node then
  return false
end
local sessions = F.node_session_count(node)
if sessions > 0 then
  F.fail('VCA_ERR_NODE_STATE', 'Node "' .. node_id .. '" still hosts ' .. sessions .. ' session(s)')
end
F.check_transition(node, 'removed')
local dump = F.node_dump(node_id)
F.transition(node, 'removed', tonumber(ARGV[3]))
return dump
