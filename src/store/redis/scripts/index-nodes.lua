-- index-nodes: rebuilds the index of draining nodes from the node hashes (run when a store connects, so
-- data written before the index existed is read right).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua).
-- Returns: the number of draining nodes.
redis.call('DEL', F.K_DRAINING)
local ids = redis.call('ZRANGE', F.K_NODES, 0, -1, 'WITHSCORES')
local draining = 0
for i = 1, #ids, 2 do
  if redis.call('HGET', F.node_key(ids[i]), 'state') == 'draining' then
    redis.call('ZADD', F.K_DRAINING, ids[i + 1], ids[i])
    draining = draining + 1
  end
end
return draining
