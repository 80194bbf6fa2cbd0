-- read-nodes: nodes for their views: one page of the fleet, one node, or the nodes in a state.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] mode: 'page' (ARGV[3] = registration sequence to start
--   after, '0' for the first page; ARGV[4] = most nodes in the page), 'one' (ARGV[3] = node id) or 'state'
--   (ARGV[3] = state).
-- Returns: 'page': {registration sequence of the page's last node ('' when the page is empty), its node
--   dumps in registration order}; otherwise an array of node dumps in registration order (empty when none
--   matches). Draining nodes come from their own index (every instance asks each tick), any other state
--   from a read of every node. A fleet is read in pages so that no one script holds Redis for long: a
--   10,000-node fleet in one script took ~1 s of Redis time, every other client waiting.
local mode = ARGV[2]
local ids
if mode == 'page' then
  local page = redis.call('ZRANGEBYSCORE', F.K_NODES, '(' .. ARGV[3], '+inf', 'WITHSCORES', 'LIMIT', 0,
    tonumber(ARGV[4]))
  local out = {}
  for i = 1, #page, 2 do
    local dump = F.node_dump(page[i])
    if dump then
      out[#out + 1] = dump
    end
  end
  return { #page > 0 and page[#page] or '', out }
elseif mode == 'one' then
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
