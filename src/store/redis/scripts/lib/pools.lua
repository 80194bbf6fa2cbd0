-- pools: the pool index placement walks: per pool (<model>|<region>) two sorted sets of its eligible
-- GPUs by free render share and free "stream" share (the tighter of free encoder and free VRAM, as
-- PlacementIndex.streamFree); index_gpu keeps a GPU in them iff it is eligible,
-- refresh_node and save_committed after a change.
-- requires: base, keys, settings, gpus, eligibility
-- KEYS: [5] pools. ARGV: the settings (lib/settings.lua).

-- VRAM a pool measures shares against: the model's catalog VRAM under headroom (a GPU registered
-- before modelVram existed falls back to its reported total).
function F.pool_vram(g)
  return F.VRAM_HEADROOM * (g.model_vram or g.memory_total)
end

-- Free stream share: the smaller of the free encoder share and the free VRAM share, under headroom.
function F.stream_free(g)
  local encoder = (F.ENC_CAP - F.eff_enc(g)) / F.ENC_CAP
  local vram = (math.floor(F.VRAM_HEADROOM * g.memory_total) - F.eff_vram(g)) / F.pool_vram(g)
  return math.min(encoder, vram)
end

-- Puts the GPU in its pool's sorted sets (by free share on each axis) iff it is eligible. The hash
-- remembers the indexed scores (fg, fs), so an unchanged GPU costs no write. `fields`: other GPU hash
-- fields to write in the same HSET (nil when none).
function F.index_gpu(node, g, in_use, fields)
  local key = F.gpu_key(g.id)
  fields = fields or {}
  if F.is_eligible(node, g, in_use) then
    local pool = g.model .. '|' .. node.region
    local free_gpu = F.fmt((F.GPU_CAP - F.eff_gpu(g)) / F.GPU_CAP)
    local free_stream = F.fmt(F.stream_free(g))
    if not (g.eligible == '1' and g.pool == pool and g.fg == free_gpu and g.fs == free_stream) then
      redis.call('ZADD', F.pool_key('gpu', pool), free_gpu, g.id)
      redis.call('ZADD', F.pool_key('stream', pool), free_stream, g.id)
      if g.pool ~= pool then
        redis.call('SADD', F.K_POOLS, pool)
      end
      local n = #fields
      fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'eligible', '1', 'pool', pool
      fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'fg', free_gpu, 'fs', free_stream
      g.eligible, g.pool, g.fg, g.fs = '1', pool, free_gpu, free_stream
    end
  elseif not (g.eligible == '0' and (g.pool == '' or not g.pool)) then
    if g.pool and g.pool ~= '' then
      redis.call('ZREM', F.pool_key('gpu', g.pool), g.id)
      redis.call('ZREM', F.pool_key('stream', g.pool), g.id)
    end
    local n = #fields
    fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'eligible', '0', 'pool', ''
    fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'fg', '', 'fs', ''
    g.eligible, g.pool, g.fg, g.fs = '0', '', '', ''
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
