-- end-session: ends a live session exactly once.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] session id, [3] end reason, [4] now (ms).
-- Returns: nil when the session is unknown or already ended; else {session reply, drained node dump or
--   false, sessions left waiting in the queue}.
local session = F.load_session(ARGV[2])
if not session or session.state == 'ended' then
  return false
end
local reply = F.end_session(session, ARGV[3], tonumber(ARGV[4]))
reply[3] = F.queue_length()
return reply
