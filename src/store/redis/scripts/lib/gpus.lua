-- gpus: reading a GPU and its load: load_gpu (the GPU hash fields placement and eligibility read;
-- uuid and name are only for views), effective load, encoder sessions in use, committed load fields.
-- requires: base, keys
-- KEYS, ARGV: none beyond lib/keys.lua.

-- emit: gpu-reader

-- Effective load: max(committed, measured); an unknown measure counts as committed.
function F.eff_gpu(g)
  return math.max(g.cg, g.mg or 0)
end
function F.eff_enc(g)
  return math.max(g.ce, g.me or 0)
end
function F.eff_vram(g)
  return math.max(g.cv, g.mv or 0)
end
function F.eff_sessions(g)
  return math.max(g.cs, g.ms or 0)
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

-- The committed load of `g` as HSET arguments.
function F.committed_fields(g)
  return { 'cg', F.fmt(g.cg), 'ce', F.fmt(g.ce), 'cv', F.fmt(g.cv), 'cs', F.fmt(g.cs) }
end
