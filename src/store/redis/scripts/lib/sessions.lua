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

-- Shape of a request: sessions of one shape (costs, region, labels) compete for exactly the same GPUs.
function F.shape_key(session)
  return session.pick .. '|' .. (session.region and (':' .. session.region) or '') .. '|' .. session.labels
end
