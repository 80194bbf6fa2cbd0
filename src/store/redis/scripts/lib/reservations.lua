-- reservations: what placing and ending a session does to GPUs, nodes and the queue: commit, release,
-- drain_if_empty, end_session.
-- requires: base, keys, settings, nodes, gpus, pools, lifecycle, sessions, queue
-- KEYS: [2] seq, [4] deadlines, [6..] queues. ARGV: the settings (lib/settings.lua).

-- Reserves `cost` on the GPU `g` (as loaded by pick) of `node` for the session (not saved here).
function F.commit(g, node, session, cost, now)
  local gid = g.id
  local seq = redis.call('INCR', F.K_SEQ)
  if redis.call('ZADD', F.gpu_sessions_key(gid), 'NX', seq, session.id) == 0 then
    F.fail('VCA_ERR_INTERNAL', 'session ' .. session.id .. ' is already committed on ' .. gid)
  end
  g.cg = g.cg + cost.gpu
  g.ce = g.ce + cost.encoder
  g.cv = g.cv + cost.vramMiB
  g.cs = g.cs + cost.encoderSessions
  -- Pending until a sample taken PENDING_SETTLE_MS after now covers it (lib/gpus.lua).
  redis.call('ZADD', F.gpu_pending_key(gid), now, session.id)
  F.add_pending(g, cost, 1)
  F.clear_node_guard(node)
  session.state = 'assigned'
  session.assignedAt = now
  session.placement = { nodeId = g.node, gpuIndex = g.index, model = g.model, cost = cost }
  F.save_committed(node, g)
end

-- Frees the session's GPU reservation; exactly once because the member is removed here. Returns the
-- node it ran on (load_node table) when it freed something.
function F.release(session)
  local placement = session.placement
  if placement == nil then
    return
  end
  session.placement = nil
  local gid = F.gpu_id(placement.nodeId, placement.gpuIndex)
  if redis.call('ZREM', F.gpu_sessions_key(gid), session.id) == 0 then
    return
  end
  local g = F.load_gpu(gid)
  if not g then
    return
  end
  local cost = placement.cost
  g.cg = g.cg - cost.gpu
  g.ce = g.ce - cost.encoder
  g.cv = g.cv - cost.vramMiB
  g.cs = g.cs - cost.encoderSessions
  if redis.call('ZREM', F.gpu_pending_key(gid), session.id) == 1 then
    F.add_pending(g, cost, -1)
  end
  local node = F.load_node(placement.nodeId)
  if node then
    F.clear_node_guard(node)
    F.save_committed(node, g)
  else
    redis.call('HSET', F.gpu_key(gid), unpack(F.committed_fields(g)))
  end
  return node
end

-- `node`: the node as loaded now, when the caller has it.
function F.drain_if_empty(node_id, now, node)
  node = node or F.load_node(node_id)
  if not node or node.state ~= 'draining' or F.node_session_count(node) > 0 then
    return false
  end
  F.transition(node, 'drained', now)
  return F.node_dump(node_id)
end

-- Ends a live session (as load_session read it): leaves the queue or releases its GPU, keeps the record
-- (with its placement) readable for RETAIN_ENDED_MS. Returns {session reply, drained node dump or false}.
function F.end_session(session, reason, now)
  local placement = session.placement
  if session.state == 'queued' and reason == 'released' then
    -- Leaving the queue: the session never held a GPU.
    reason = 'cancelled'
  end
  if session.state == 'queued' then
    local rank = F.class_rank(session.priority)
    if rank then
      redis.call('ZREM', KEYS[F.QUEUE_KEY_OFFSET + rank], session.id)
    end
  end
  local node = F.release(session)
  F.remove_owned_session(session)
  session.placement = placement
  session.state = 'ended'
  session.endedAt = now
  session.endReason = reason
  -- Only the ended fields changed since the session was read (release leaves the placement as it was).
  F.save_ended_session(session)
  redis.call('ZADD', F.K_DEADLINES, F.fmt(now + F.RETAIN_ENDED_MS), session.id)
  local drained = false
  if placement then
    drained = F.drain_if_empty(placement.nodeId, now, node)
  end
  return { F.ended_session_reply(session), drained }
end
