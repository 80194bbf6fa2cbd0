-- renew-leases: extends the leases of live sessions (never shortens one).
-- KEYS: the prelude's fixed keys (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings JSON, [2] new lease expiry (ms), [3..] session ids.
-- Returns: how many of the ids were live.
local expiry = tonumber(ARGV[2])
local renewed = 0
for i = 3, #ARGV do
  local session = load_session(ARGV[i])
  if session and session.state ~= 'ended' then
    if expiry > session.leaseExpiresAt then
      session.leaseExpiresAt = expiry
      save_session(session)
      redis.call('ZADD', K_DEADLINES, session_deadline(session), session.id)
    end
    renewed = renewed + 1
  end
end
return renewed
