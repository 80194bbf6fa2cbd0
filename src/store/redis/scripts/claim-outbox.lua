-- claim-outbox: claims the outbox entries due now, earliest due first: each one's attempts go up by one
-- and its due time moves to the end of the lease, so no other claimer gets it before then.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] now (ms), [3] lease (ms), [4] most entries to claim.
-- Returns: an array of {id, entry hash (HGETALL), due time}, as claimed.
local now = tonumber(ARGV[2])
local due_at = F.fmt(now + tonumber(ARGV[3]))
local limit = tonumber(ARGV[4])
local claimed = {}
if limit < 1 then
  return claimed
end
local ids = redis.call('ZRANGEBYSCORE', F.K_OUTBOX, '-inf', F.fmt(now), 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  if redis.call('EXISTS', F.outbox_entry_key(id)) == 1 then
    redis.call('HINCRBY', F.outbox_entry_key(id), 'attempts', 1)
    redis.call('ZADD', F.K_OUTBOX, 'XX', due_at, id)
    claimed[#claimed + 1] = F.outbox_entry(id)
  else
    -- An id without its entry hash delivers nothing: forget it.
    redis.call('ZREM', F.K_OUTBOX, id)
  end
end
return claimed
