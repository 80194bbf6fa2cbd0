-- create-session: atomic pick-and-reserve, or queue, or refuse (one EVALSHA per allocation).
-- KEYS: the prelude's fixed keys (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings JSON, [2] the new SessionRecord JSON (state 'queued', placement null, lease set),
--   [3] now (ms), [4] strategy ('packed' | 'spread'), [5] wait mode ('wait' | 'no-wait'),
--   [6] max queue length, [7] queue deadline (ms).
-- Returns: {'assigned', session JSON} | {'queued', session JSON, position} | {'refused', reason}.
-- Errors: VCA_ERR_SESSION_EXISTS, VCA_ERR_UNKNOWN_PRIORITY (nothing changed).
local session = cjson.decode(ARGV[2])
local now = tonumber(ARGV[3])
if redis.call('EXISTS', session_key(session.id)) == 1 then
  fail('VCA_ERR_SESSION_EXISTS', 'Session ' .. session.id .. ' already exists')
end
sweep_stale(now)
local gpu, cost = pick(session.costs, ARGV[4], request_region(session), request_labels(session), nil)
if gpu then
  commit(gpu, session, cost, now)
  save_session(session)
  redis.call('ZADD', K_DEADLINES, session_deadline(session), session.id)
  return { 'assigned', cjson.encode(session) }
end
if ARGV[5] == 'no-wait' then
  return { 'refused', 'no-capacity' }
end
local queue = queue_key(session.priority)
if queue_length() >= tonumber(ARGV[6]) then
  return { 'refused', 'queue-full' }
end
session.queuedAt = now
session.queueDeadline = tonumber(ARGV[7])
enqueue(session, false)
save_session(session)
redis.call('ZADD', K_DEADLINES, session_deadline(session), session.id)
return { 'queued', cjson.encode(session), queue_position(session) }
