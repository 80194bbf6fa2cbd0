-- gpus: reading a GPU and its load: load_gpu (the GPU hash fields placement and eligibility read;
-- not uuid and name, only for views, nor rf and sampledAt, which record-telemetry reads from the whole
-- hash), effective load, encoder sessions in use, committed load fields.
-- requires: base, keys
-- KEYS, ARGV: none beyond lib/keys.lua.

-- emit: gpu-reader

-- Effective load, as src/fleet/effective-load.ts: max(committed, measured + pending), VRAM with the
-- GPU's reserve on the committed side; an unknown measure counts as committed. Pending (pg, pe, pv, ps)
-- and the reserve (rv) are absent on a GPU registered before they existed: 0.
function F.effective_on(committed, measured, pending)
  if measured == nil then
    return committed
  end
  return math.max(committed, measured + (pending or 0))
end
function F.eff_gpu(g)
  return F.effective_on(g.cg, g.mg, g.pg)
end
function F.eff_enc(g)
  return F.effective_on(g.ce, g.me, g.pe)
end
function F.eff_vram(g)
  return F.effective_on(g.cv + (g.rv or 0), g.mv, g.pv)
end
function F.eff_sessions(g)
  return F.effective_on(g.cs, g.ms, g.ps)
end

function F.node_gpus(node)
  local gpus = {}
  for i = 0, node.gpu_count - 1 do
    gpus[#gpus + 1] = F.load_gpu(F.gpu_id(node.id, i))
  end
  return gpus
end

function F.encoder_sessions_in_use(gpus)
  local total = 0
  for _, g in ipairs(gpus) do
    total = total + F.eff_sessions(g)
  end
  return total
end

function F.node_session_count(node)
  local total = 0
  for i = 0, node.gpu_count - 1 do
    total = total + redis.call('ZCARD', F.gpu_sessions_key(F.gpu_id(node.id, i)))
  end
  return total
end

-- The committed and pending load of `g` as HSET arguments.
function F.committed_fields(g)
  return { 'cg', F.fmt(g.cg), 'ce', F.fmt(g.ce), 'cv', F.fmt(g.cv), 'cs', F.fmt(g.cs),
    'pg', F.fmt(g.pg or 0), 'pe', F.fmt(g.pe or 0), 'pv', F.fmt(g.pv or 0), 'ps', F.fmt(g.ps or 0) }
end

-- Adds (sign 1) or takes away (sign -1) `cost` from the pending load of `g` (not saved here).
function F.add_pending(g, cost, sign)
  g.pg = (g.pg or 0) + sign * cost.gpu
  g.pe = (g.pe or 0) + sign * cost.encoder
  g.pv = (g.pv or 0) + sign * cost.vramMiB
  g.ps = (g.ps or 0) + sign * cost.encoderSessions
end
