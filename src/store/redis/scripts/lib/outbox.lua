-- outbox: the callback outbox (add_node_drained, written by F.transition in the same script as the
-- node's move to drained, and outbox_entry, an entry as the TypeScript side reads it). An entry is a
-- member of the outbox zset scored by its due time plus a hash outbox-entry:<id> of kind, node (the
-- node's registration JSON), createdAt, attempts and lastError ('' before any failure).
-- requires: base, keys
-- KEYS, ARGV: none beyond lib/keys.lua.

-- The node just became drained: its callback is due now. The id is the embedded store's
-- (EmbeddedOutbox.addNodeDrained), one per drained node: drained is final until removal.
function F.add_node_drained(node, now)
  local fields = redis.call('HMGET', F.node_key(node.id), 'registration', 'registeredAt')
  local id = 'node-drained:' .. node.id .. ':' .. F.fmt(tonumber(fields[2]))
  if redis.call('ZADD', F.K_OUTBOX, 'NX', F.fmt(now), id) == 0 then
    return
  end
  redis.call('HSET', F.outbox_entry_key(id), 'kind', 'node-drained', 'node', fields[1], 'createdAt', F.fmt(now),
    'attempts', '0', 'lastError', '')
end

-- {id, {entry hash}, due time}, or false when the entry is gone.
function F.outbox_entry(id)
  local flat = redis.call('HGETALL', F.outbox_entry_key(id))
  if #flat == 0 then
    return false
  end
  return { id, flat, redis.call('ZSCORE', F.K_OUTBOX, id) }
end
