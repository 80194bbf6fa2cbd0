-- nodes: reading a node: load_node (the node hash fields the scripts use), require_node and node_dump
-- (the node as the TypeScript side builds its NodeView).
-- requires: base, keys
-- KEYS, ARGV: none beyond lib/keys.lua.

-- emit: node-reader

function F.require_node(id)
  local node = F.load_node(id)
  if not node then
    F.fail('VCA_ERR_NODE_NOT_FOUND', 'Node "' .. id .. '" is not registered')
  end
  return node
end

-- Clears the telemetry guard (lib/telemetry.lua) of `node` as loaded in this call (load_node table):
-- after any change to its state, its GPUs' staleness, committed or pending load. No write when the
-- guard is already ''; a guard absent from the hash is written ''.
function F.clear_node_guard(node)
  if node.tg ~= '' then
    redis.call('HSET', F.node_key(node.id), 'tg', '')
    node.tg = ''
  end
end

-- A node as the TypeScript side builds its NodeView: {node hash, gpu hash, session count, ...}.
function F.node_dump(node_id)
  local flat = redis.call('HGETALL', F.node_key(node_id))
  if #flat == 0 then
    return false
  end
  local out = { flat }
  local count = 0
  for i = 1, #flat, 2 do
    if flat[i] == 'gpuCount' then
      count = tonumber(flat[i + 1])
      break
    end
  end
  for i = 0, count - 1 do
    local gid = F.gpu_id(node_id, i)
    out[#out + 1] = redis.call('HGETALL', F.gpu_key(gid))
    out[#out + 1] = redis.call('ZCARD', F.gpu_sessions_key(gid))
  end
  return out
end
