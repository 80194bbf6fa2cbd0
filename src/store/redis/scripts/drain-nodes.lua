-- drain-nodes: starts draining several nodes in one step, all or none (EmbeddedStore.drainNodes): every
-- node is checked before the first changes; an empty one drains at once (its callback in the outbox).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] now (ms), [3] drain deadline (ms), [4] the states each node
--   must still be in, comma-separated ('' = any state that may move to draining, or draining),
--   [5..] node ids (distinct).
-- Returns: {'draining', node dump, ...} in ARGV order, or, having written nothing,
--   {'refused', code, node id, message} (VCA_ERR_NODE_NOT_FOUND, VCA_ERR_NODE_STATE).
local now = tonumber(ARGV[2])
local only_from = nil
if ARGV[4] ~= '' then
  only_from = {}
  for state in string.gmatch(ARGV[4], '[^,]+') do
    only_from[state] = true
  end
end
local nodes = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local node = F.load_node(id)
  if not node then
    return { 'refused', 'VCA_ERR_NODE_NOT_FOUND', id, 'Node "' .. id .. '" is not registered' }
  end
  if only_from and not only_from[node.state] then
    return { 'refused', 'VCA_ERR_NODE_STATE', id, 'Node "' .. id .. '" is ' .. node.state .. ', no longer '
      .. string.gsub(ARGV[4], ',', ' or ') .. '; nothing was drained' }
  end
  local allowed = F.ALLOWED_TRANSITIONS[node.state]
  if node.state ~= 'draining' and not (allowed and allowed['draining']) then
    return { 'refused', 'VCA_ERR_NODE_STATE', id, 'Node "' .. id .. '" cannot go from ' .. node.state .. ' to draining' }
  end
  nodes[#nodes + 1] = node
end
local out = { 'draining' }
for _, node in ipairs(nodes) do
  F.transition(node, 'draining', now)
  redis.call('HSET', F.node_key(node.id), 'drainDeadline', ARGV[3])
  if F.node_session_count(node) == 0 then
    F.transition(node, 'drained', now)
  end
  out[#out + 1] = F.node_dump(node.id)
end
return out
