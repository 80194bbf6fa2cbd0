-- pools: the pool index placement walks: per pool (<model>|<region>) two sorted sets of its eligible
-- GPUs by free render and free encoder share; index_gpu keeps a GPU in them iff it is eligible,
-- refresh_node and save_committed after a change.
-- requires: base, keys, settings, gpus, eligibility
-- KEYS: [5] pools. ARGV: the settings (lib/settings.lua).

-- Puts the GPU in its pool's sorted sets (by free share on each axis) iff it is eligible. The hash
-- remembers the indexed scores (fg, fe), so an unchanged GPU costs no write. `fields`: other GPU hash
-- fields to write in the same HSET (nil when none).
function F.index_gpu(node, g, in_use, fields)
  local key = F.gpu_key(g.id)
  fields = fields or {}
  if F.is_eligible(node, g, in_use) then
    local pool = g.model .. '|' .. node.region
    local free_gpu = F.fmt((F.GPU_CAP - F.eff_gpu(g)) / F.GPU_CAP)
    local free_enc = F.fmt((F.ENC_CAP - F.eff_enc(g)) / F.ENC_CAP)
    if not (g.eligible == '1' and g.pool == pool and g.fg == free_gpu and g.fe == free_enc) then
      redis.call('ZADD', F.pool_key('gpu', pool), free_gpu, g.id)
      redis.call('ZADD', F.pool_key('enc', pool), free_enc, g.id)
      if g.pool ~= pool then
        redis.call('SADD', F.K_POOLS, pool)
      end
      local n = #fields
      fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'eligible', '1', 'pool', pool
      fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'fg', free_gpu, 'fe', free_enc
      g.eligible, g.pool, g.fg, g.fe = '1', pool, free_gpu, free_enc
    end
  elseif not (g.eligible == '0' and (g.pool == '' or not g.pool)) then
    if g.pool and g.pool ~= '' then
      redis.call('ZREM', F.pool_key('gpu', g.pool), g.id)
      redis.call('ZREM', F.pool_key('enc', g.pool), g.id)
    end
    local n = #fields
    fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'eligible', '0', 'pool', ''
    fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'fg', '', 'fe', ''
    g.eligible, g.pool, g.fg, g.fe = '0', '', '', ''
  end
  if #fields > 0 then
    redis.call('HSET', key, unpack(fields))
  end
end

function F.refresh_node(node)
  local gpus = F.node_gpus(node)
  local in_use = F.encoder_sessions_in_use(gpus)
  for _, g in ipairs(gpus) do
    F.index_gpu(node, g, in_use)
  end
end

-- After the committed load of `g` (as loaded, then changed in memory) changed: writes it, and
-- re-indexes the GPU, or its whole node when its GPUs share an encoder session limit (they change
-- together).
function F.save_committed(node, g)
  if node.system_limit ~= nil then
    redis.call('HSET', F.gpu_key(g.id), unpack(F.committed_fields(g)))
    F.refresh_node(node)
  else
    F.index_gpu(node, g, 0, F.committed_fields(g))
  end
end
