-- migrate-session: moves an assigned session off its node: reserves a GPU elsewhere and releases the
-- old one in one step, or puts the session at the front of its class in the queue when nothing fits.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] session id, [3] now (ms), [4] strategy, [5] new lease expiry
--   (ms), [6] queue deadline (ms).
-- Returns: nil when the session is not assigned; else {session reply, old placement as {node id, GPU
--   index, model, cost}, drained node dump or false}. Errors: VCA_ERR_UNKNOWN_PRIORITY when it must
--   queue in an unknown class (nothing changed).
local session = F.load_session(ARGV[2])
if not session or session.state ~= 'assigned' or session.placement == nil then
  return false
end
local now = tonumber(ARGV[3])
F.sweep_stale(now)
local from = session.placement
local gpu, cost, node = F.pick_by_latency(session, ARGV[4], from.nodeId, now)
if not gpu then
  F.queue_key(session.priority) -- an unknown class fails here, before anything is released
end
F.release(session)
session.migrations = session.migrations + 1
if gpu then
  -- The release may have changed the picked GPU's node (shared encoder limit): read it again.
  F.commit(gpu, F.load_node(gpu.node), session, cost, now)
  session.leaseExpiresAt = tonumber(ARGV[5])
else
  session.state = 'queued'
  session.queuedAt = now
  session.queueDeadline = tonumber(ARGV[6])
  F.enqueue(session, true)
end
F.save_session(session)
redis.call('ZADD', F.K_DEADLINES, F.fmt(F.session_deadline(session)), session.id)
local from_node, from_index, from_model, from_cost = F.placement_fields(from)
return { F.session_reply(session), { from_node, from_index, from_model, from_cost }, F.drain_if_empty(from.nodeId, now) }
