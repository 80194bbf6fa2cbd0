-- retry-outbox: makes a claimed outbox entry due again later, recording why its attempt failed; only
-- while the claim is the entry's latest (a claimer whose lease ran out must not move another's claim).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] entry id, [3] the claim's attempts, [4] due time (ms),
--   [5] why the attempt failed.
-- Returns: 1 when rescheduled; 0, changing nothing, when the entry is gone or was claimed again since.
local key = F.outbox_entry_key(ARGV[2])
local attempts = redis.call('HGET', key, 'attempts')
if not attempts or tonumber(attempts) ~= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', F.K_OUTBOX, 'XX', F.fmt(tonumber(ARGV[4])), ARGV[2])
redis.call('HSET', key, 'lastError', ARGV[5])
return 1
