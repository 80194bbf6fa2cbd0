-- create-session: atomic pick-and-reserve, or queue, or refuse (one EVALSHA per allocation).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] session id, [3] spec JSON (the immutable part of the record,
--   createdAt included), [4] pick costs ('\n<model>\t<gpu>,<encoder>,<vram>,<sessions>' per model, '\n'
--   last), [5] region (':' .. region, '' when none), [6] labels JSON ('' when none), [7] priority class,
--   [8] transport, [9] now (ms), [10] strategy ('packed' | 'spread'), [11] wait mode ('wait' | 'no-wait'),
--   [12] max queue length, [13] queue deadline (ms), [14] lease expiry (ms), [15] owner ('' when none),
--   [16] most live sessions per owner ('' for no limit), [17] reported latencies in the order they are
--   tried, as JSON [[region, ms], ...] ('' when none; lib/latency.lua).
-- Returns: {'assigned', node id, GPU index, model} | {'queued', position} | {'refused', reason}
--   (reason: 'no-capacity', 'queue-full' or 'owner-limit'); the caller builds the record it sent with
--   these changes.
-- Errors: VCA_ERR_SESSION_EXISTS, VCA_ERR_UNKNOWN_PRIORITY (nothing changed).
local id = ARGV[2]
local now = tonumber(ARGV[9])
local key = F.session_key(id)
if redis.call('EXISTS', key) == 1 then
  F.fail('VCA_ERR_SESSION_EXISTS', 'Session ' .. id .. ' already exists')
end
-- An unknown class is refused whether or not a GPU is free, before anything is written.
F.queue_key(ARGV[7])
-- The owner's limit, counted and kept in this same script: two instances racing cannot both pass it.
local owner_limit = tonumber(ARGV[16])
if ARGV[15] ~= '' and owner_limit and F.owner_session_count(ARGV[15]) >= owner_limit then
  return { 'refused', 'owner-limit' }
end
local session = {
  id = id,
  state = 'queued',
  priority = ARGV[7],
  labels = ARGV[6],
  pick = ARGV[4],
  leaseExpiresAt = tonumber(ARGV[14]),
  migrations = 0,
  owner = ARGV[15],
  latencies = ARGV[17],
  createdAt = now,
}
if ARGV[5] ~= '' then
  session.region = string.sub(ARGV[5], 2)
end
F.sweep_stale(now)
local gpu, cost, node = F.pick_by_latency(session, ARGV[10], nil, now)
if not gpu then
  if ARGV[11] == 'no-wait' then
    return { 'refused', 'no-capacity' }
  end
  if F.queue_length() >= tonumber(ARGV[12]) then
    return { 'refused', 'queue-full' }
  end
end
-- The fields that never change, written with the first save.
local fixed = { 'spec', ARGV[3], 'priority', ARGV[7], 'transport', ARGV[8], 'region', ARGV[5], 'labels', ARGV[6],
  'pick', ARGV[4], 'owner', ARGV[15], 'latencies', ARGV[17], 'createdAt', ARGV[9] }
F.add_owned_session(session)
if gpu then
  F.commit(gpu, node, session, cost, now)
  F.save_session(session, fixed)
  redis.call('ZADD', F.K_DEADLINES, F.fmt(F.session_deadline(session)), id)
  return { 'assigned', gpu.node, F.fmt(gpu.index), gpu.model }
end
session.queuedAt = now
session.queueDeadline = tonumber(ARGV[13])
F.enqueue(session, false)
F.save_session(session, fixed)
redis.call('ZADD', F.K_DEADLINES, F.fmt(F.session_deadline(session)), id)
return { 'queued', F.queue_position(session) }
