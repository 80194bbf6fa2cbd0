-- register-nodes: registers a batch of nodes, all or none: every entry is checked before the first
-- write (EmbeddedStore.registerNodes), so a conflict or an unknown GPU model anywhere changes nothing.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] now (ms), then 8 per node, as ARGV[2] and [4..10] of
--   register-node.lua: node id, identity, registration JSON, labels JSON, region, system encoder
--   session limit, GPUs JSON, unknown-model message.
-- Returns: {'registered', {created (1 or 0), node dump}, ...} in ARGV order, or, having written
--   nothing, {'refused', code, node id, message} (VCA_ERR_NODE_CONFLICT, VCA_ERR_UNKNOWN_GPU_MODEL).
local now = tonumber(ARGV[2])
local per_node = 8
local nodes, verdicts, pending = {}, {}, {}
for at = 3, #ARGV, per_node do
  local node = { ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], ARGV[at + 6] }
  local verdict = F.check_registration(node[1], node[2], ARGV[at + 7], pending[node[1]])
  if type(verdict) == 'table' then
    return { 'refused', verdict[1], node[1], verdict[2] }
  end
  if not pending[node[1]] then
    pending[node[1]] = node[2]
  end
  nodes[#nodes + 1] = node
  verdicts[#verdicts + 1] = verdict
end
local out, added = { 'registered' }, {}
for i, node in ipairs(nodes) do
  local created = 0
  if verdicts[i] == 'new' and not added[node[1]] then
    F.add_node(node, now)
    added[node[1]] = true
    created = 1
  end
  out[#out + 1] = { created, F.node_dump(node[1]) }
end
return out
