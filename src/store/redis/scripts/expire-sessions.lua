-- expire-sessions: ends every session whose lease or queue wait ran out, each exactly once, and forgets
-- ended sessions kept past their retention.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] now (ms).
-- Returns: an array of {session reply, drained node dump or false, sessions left waiting in the queue},
--   in deadline order.
local now = tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', F.K_DEADLINES, '-inf', F.fmt(now))
local ended = {}
for _, id in ipairs(due) do
  local session = F.load_session(id)
  if not session then
    redis.call('ZREM', F.K_DEADLINES, id)
  elseif session.state == 'ended' then
    local forget_at = (session.endedAt or 0) + F.RETAIN_ENDED_MS
    if forget_at <= now then
      redis.call('DEL', F.session_key(id))
      redis.call('ZREM', F.K_DEADLINES, id)
    else
      redis.call('ZADD', F.K_DEADLINES, F.fmt(forget_at), id)
    end
  else
    local deadline = F.session_deadline(session)
    if deadline > now then
      redis.call('ZADD', F.K_DEADLINES, F.fmt(deadline), id)
    else
      local reason = 'lease-expired'
      if session.state == 'queued' and session.queueDeadline ~= nil and session.queueDeadline <= now then
        reason = 'queue-timeout'
      end
      local reply = F.end_session(session, reason, now)
      -- As end-session.lua: the queue after this end, so a caller skips a queue pass nobody needs.
      reply[3] = F.queue_length()
      ended[#ended + 1] = reply
    end
  end
end
return ended
