-- migrate-session: moves an assigned session off its node: reserves a GPU elsewhere and releases the
-- old one in one step, or puts the session at the front of its class in the queue when nothing fits.
-- KEYS: the prelude's fixed keys (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings JSON, [2] session id, [3] now (ms), [4] strategy, [5] new lease expiry (ms),
--   [6] queue deadline (ms).
-- Returns: nil when the session is not assigned; else {session JSON, old placement JSON, drained node
--   dump or false}. Errors: VCA_ERR_UNKNOWN_PRIORITY when it must queue in an unknown class (nothing
--   changed).
local session = load_session(ARGV[2])
if not session or session.state ~= 'assigned' or is_null(session.placement) then
  return false
end
local now = tonumber(ARGV[3])
sweep_stale(now)
local from = session.placement
local gpu, cost = pick(session.costs, ARGV[4], request_region(session), request_labels(session), from.nodeId)
if not gpu then
  queue_key(session.priority) -- an unknown class fails here, before anything is released
end
release(session)
session.migrations = session.migrations + 1
if gpu then
  commit(gpu, session, cost, now)
  session.leaseExpiresAt = tonumber(ARGV[5])
else
  session.state = 'queued'
  session.queuedAt = now
  session.queueDeadline = tonumber(ARGV[6])
  enqueue(session, true)
end
save_session(session)
redis.call('ZADD', K_DEADLINES, session_deadline(session), session.id)
return { cjson.encode(session), cjson.encode(from), drain_if_empty(from.nodeId, now) }
