-- sessions-on-node: the sessions committed on a node's GPUs, GPU by GPU in commit order.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id.
-- Returns: an array of session replies. Errors: VCA_ERR_NODE_NOT_FOUND.
local node = F.require_node(ARGV[2])
local out = {}
for i = 0, node.gpu_count - 1 do
  F.append_gpu_sessions(out, node.id, i)
end
return out
