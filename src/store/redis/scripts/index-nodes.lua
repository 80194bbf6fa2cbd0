-- index-nodes: rebuilds the indexes derived from the node and GPU hashes (run when a store connects, so
-- data written by an earlier version is read right): the index of draining nodes, and every node's GPUs
-- in the pool index (pool sorted sets by free render and free stream share; the encoder-only sets of
-- earlier versions are deleted).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua).
-- Returns: the number of draining nodes.
redis.call('DEL', F.K_DRAINING)
for _, pool in ipairs(redis.call('SMEMBERS', F.K_POOLS)) do
  redis.call('DEL', F.pool_key('enc', pool))
end
local ids = redis.call('ZRANGE', F.K_NODES, 0, -1, 'WITHSCORES')
local draining = 0
for i = 1, #ids, 2 do
  local node = F.load_node(ids[i])
  if node then
    F.clear_node_guard(node)
    if node.state == 'draining' then
      redis.call('ZADD', F.K_DRAINING, ids[i + 1], ids[i])
      draining = draining + 1
    end
    F.refresh_node(node)
  end
end
return draining
