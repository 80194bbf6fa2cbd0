-- read-nodes: a consistent snapshot of nodes for their views.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] mode: 'all', 'one' (ARGV[3] = node id) or 'state' (ARGV[3] =
--   state).
-- Returns: an array of node dumps in registration order (empty when none matches). Draining nodes come
-- from their own index (every instance asks each tick), any other state from a read of every node.
local mode = ARGV[2]
local ids
if mode == 'one' then
  ids = { ARGV[3] }
elseif mode == 'state' and ARGV[3] == 'draining' then
  ids = redis.call('ZRANGE', F.K_DRAINING, 0, -1)
else
  ids = redis.call('ZRANGE', F.K_NODES, 0, -1)
end
local out = {}
for _, id in ipairs(ids) do
  if mode ~= 'state' or redis.call('HGET', F.node_key(id), 'state') == ARGV[3] then
    local dump = F.node_dump(id)
    if dump then
      out[#out + 1] = dump
    end
  end
end
return out
