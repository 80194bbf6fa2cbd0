-- place-queued: places queued sessions, in queue order, wherever they now fit; each placed session's
-- lease starts anew with the length for its transport.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] now (ms), [3] strategy, [4] REST lease length (ms),
--   [5] WebSocket lease length (ms).
-- Returns: an array of the placed sessions' replies, in queue order.
local now = tonumber(ARGV[2])
local strategy = ARGV[3]
local placed = {}
local lease = { rest = tonumber(ARGV[4]), websocket = tonumber(ARGV[5]) }
F.sweep_stale(now)
-- A shape that found no GPU in this pass will not find one later in the same pass.
local failed_shapes = {}
for rank = 1, #F.CLASSES do
  local key = KEYS[F.QUEUE_KEY_OFFSET + rank]
  local ids = redis.call('ZRANGE', key, 0, -1)
  for _, id in ipairs(ids) do
    local session = F.load_session(id)
    if session then
      local shape = F.shape_key(session) .. F.latency_shape(session, now)
      if not failed_shapes[shape] then
        local gpu, cost, node = F.pick_by_latency(session, strategy, nil, now)
        if gpu then
          redis.call('ZREM', key, id)
          F.commit(gpu, node, session, cost, now)
          session.leaseExpiresAt = now + lease[session.transport]
          session.queueDeadline = nil
          F.save_session(session)
          redis.call('ZADD', F.K_DEADLINES, F.fmt(F.session_deadline(session)), id)
          placed[#placed + 1] = F.session_reply(session)
        else
          failed_shapes[shape] = true
        end
      end
    else
      redis.call('ZREM', key, id)
    end
  end
end
return placed
