-- expire-sessions: ends every session whose lease or queue wait ran out, each exactly once, and forgets
-- ended sessions kept past their retention.
-- KEYS: the prelude's fixed keys (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings, [2] now (ms).
-- Returns: an array of {session reply, drained node dump or false}, in deadline order.
local now = tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', K_DEADLINES, '-inf', fmt(now))
local ended = {}
for _, id in ipairs(due) do
  local session = load_session(id)
  if not session then
    redis.call('ZREM', K_DEADLINES, id)
  elseif session.state == 'ended' then
    local forget_at = (session.endedAt or 0) + RETAIN_ENDED_MS
    if forget_at <= now then
      redis.call('DEL', session_key(id))
      redis.call('ZREM', K_DEADLINES, id)
    else
      redis.call('ZADD', K_DEADLINES, fmt(forget_at), id)
    end
  else
    local deadline = session_deadline(session)
    if deadline > now then
      redis.call('ZADD', K_DEADLINES, fmt(deadline), id)
    else
      local reason = 'lease-expired'
      if session.state == 'queued' and session.queueDeadline ~= nil and session.queueDeadline <= now then
        reason = 'queue-timeout'
      end
      ended[#ended + 1] = end_session(session, reason, now)
    end
  end
end
return ended
