-- renew-leases: extends the leases of live sessions (never shortens one).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] new lease expiry (ms), [3..] session ids.
-- Returns: how many of the ids were live.
local expiry = tonumber(ARGV[2])
local renewed = 0
for i = 3, #ARGV do
  local key = F.session_key(ARGV[i])
  local fields = redis.call('HMGET', key, 'state', 'leaseExpiresAt', 'queueDeadline')
  if fields[1] and fields[1] ~= 'ended' then
    if expiry > tonumber(fields[2]) then
      redis.call('HSET', key, 'leaseExpiresAt', F.fmt(expiry))
      local deadline = expiry
      local queue_deadline = F.num(fields[3])
      if fields[1] == 'queued' and queue_deadline ~= nil then
        deadline = math.min(expiry, queue_deadline)
      end
      redis.call('ZADD', F.K_DEADLINES, F.fmt(deadline), ARGV[i])
    end
    renewed = renewed + 1
  end
end
return renewed
