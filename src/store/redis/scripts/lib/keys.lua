-- keys: the names of every key, all built from the base of KEYS[1] so that on Redis Cluster they share
-- its hash tag `{cluster}` and live in the slot of the declared keys.
-- KEYS (every script): [1] <base>:nodes  [2] <base>:seq  [3] <base>:fresh  [4] <base>:deadlines
--   [5] <base>:pools  [6..] <base>:queue:<class>, highest class first (src/store/redis/keys.ts).
--   Keys computed from data: node:<id>, gpu:<node>#<i>, gpu-sessions:<node>#<i>, gpu-pending:<node>#<i>,
--   pool-gpu/pool-stream:<pool>, session:<id>, webhook:<key>, draining, outbox, outbox-entry:<id>,
--   owner-sessions:<owner>, cost-evidence.
-- ARGV: none.

-- emit: script-keys

-- Draining node ids by registration sequence: read every tick by every instance, so it must not
-- cost a read of every node.
F.K_DRAINING = F.BASE .. ':draining'
-- Callback outbox entry ids by due time (lib/outbox.lua).
F.K_OUTBOX = F.BASE .. ':outbox'

function F.node_key(id)
  return F.BASE .. ':node:' .. id
end
function F.gpu_id(node_id, index)
  return node_id .. '#' .. string.format('%d', index)
end
function F.gpu_key(gid)
  return F.BASE .. ':gpu:' .. gid
end
function F.gpu_sessions_key(gid)
  return F.BASE .. ':gpu-sessions:' .. gid
end
-- Sessions placed on a GPU that no sample has covered yet, scored by placement time (ms).
function F.gpu_pending_key(gid)
  return F.BASE .. ':gpu-pending:' .. gid
end
function F.session_key(id)
  return F.BASE .. ':session:' .. id
end
-- Pool keys by pool, then axis, each built once (there are few pools: one per model and region; every
-- commit and release writes two of them).
F.POOL_KEYS = {}
function F.pool_key(axis, pool)
  local keys = F.POOL_KEYS[pool]
  if not keys then
    keys = {}
    F.POOL_KEYS[pool] = keys
  end
  local key = keys[axis]
  if not key then
    key = F.BASE .. ':pool-' .. axis .. ':' .. pool
    keys[axis] = key
  end
  return key
end
function F.outbox_entry_key(id)
  return F.BASE .. ':outbox-entry:' .. id
end
-- Learned-cost evidence sums (merge-cost-evidence.lua).
function F.cost_evidence_key()
  return F.BASE .. ':cost-evidence'
end
-- The live sessions of one owner (the gamer of an identity token): a set of session ids (lib/sessions.lua).
function F.owner_sessions_key(owner)
  return F.BASE .. ':owner-sessions:' .. owner
end
