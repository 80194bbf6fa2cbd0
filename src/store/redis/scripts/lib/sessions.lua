-- sessions: the session hash as a table and back (load_session, save_session, session_reply and
-- placement_fields: emitted from sessionHash in src/store/redis/hash-layouts.ts), its deadline, and
-- its shape. A session hash holds plain fields; `spec` is the immutable part as JSON (never decoded
-- here), `pick` the costs per model as '<model>\t<gpu>,<encoder>,<vram>,<sessions>\n' lines.
-- requires: base, keys, costs
-- KEYS, ARGV: none beyond lib/keys.lua.

-- emit: session-record

function F.session_deadline(session)
  if session.state == 'queued' and session.queueDeadline ~= nil then
    return math.min(session.leaseExpiresAt, session.queueDeadline)
  end
  return session.leaseExpiresAt
end

-- The owner of a session, nil when it has none ('' when a front-end asked for it, false in a record
-- written before sessions had owners).
function F.session_owner(session)
  if session.owner and session.owner ~= '' then
    return session.owner
  end
  return nil
end

-- An owner's live sessions are the members of its owner-sessions set: a session joins when
-- create-session records it (queued or assigned) and leaves in end_session (lib/reservations.lua), the
-- one way a live session stops being live, so the set's size is what the per-owner limit counts.
function F.owner_session_count(owner)
  return redis.call('SCARD', F.owner_sessions_key(owner))
end

function F.add_owned_session(session)
  local owner = F.session_owner(session)
  if owner then
    redis.call('SADD', F.owner_sessions_key(owner), session.id)
  end
end

function F.remove_owned_session(session)
  local owner = F.session_owner(session)
  if owner then
    redis.call('SREM', F.owner_sessions_key(owner), session.id)
  end
end

-- Shape of a request: sessions of one shape (costs, region, labels) compete for exactly the same GPUs
-- (a queue pass adds the latency plan's part, lib/latency.lua: latency_shape).
function F.shape_key(session)
  return session.pick .. '|' .. (session.region and (':' .. session.region) or '') .. '|' .. session.labels
end

-- Appends to `out` the reply of every session committed on GPU `index` of node `node_id`, in commit
-- order (sessions-on-node.lua; the telemetry answer's sessions, lib/telemetry.lua).
function F.append_gpu_sessions(out, node_id, index)
  for _, id in ipairs(redis.call('ZRANGE', F.gpu_sessions_key(F.gpu_id(node_id, index)), 0, -1)) do
    local session = F.load_session(id)
    if session then
      out[#out + 1] = F.session_reply(session)
    end
  end
end
