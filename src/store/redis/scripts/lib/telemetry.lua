-- telemetry: the telemetry guard and the fast path of record-telemetry.lua.
-- The guard (node hash field `tg`) is written by record-telemetry's full path when a report leaves the
-- node in a state a later report only adds samples to: no transition pending (not provisioning or
-- unhealthy), every GPU fresh, with telemetry and no pending session. It holds, per GPU in index order
-- (lines joined by ';', fields by ','), what the full path reads of the GPU besides the samples, as
-- stored: committed and pending load, reserve floor, session count, memory total, model VRAM, encoder
-- session capacity, hostable, throttle temperature, eligibility, pool, the reserve (read only for a GPU
-- with sessions: without, the reserve follows the measured VRAM and the fast path computes it) and the
-- model (last). None of what it reads moves while the guard holds, so the fast path never writes it.
-- Every other writer of what it holds clears it (`tg` ''): F.transition, sweep_stale, add_node, commit
-- and release (lib/reservations.lua), index-nodes.lua.
-- With the guard, a report whose samples cover every GPU once and keep each GPU's eligibility and
-- memory total is applied without reading any GPU hash: the full path's writes (the samples, the
-- reserve of a GPU without sessions, the free shares and pool scores: one HSET per GPU, one ZADD per pool
-- sorted set with a score that moved, one ZADD of freshness), and the answer built from the guard and the
-- samples. The free shares last indexed are not in the guard (they move with the samples): the fast path
-- remembers them (F.LAST_REPORT) and writes a score only when it moved, or both when it does not know
-- them (the same values again change nothing).
-- requires: base, keys, settings, gpus, pools, sessions, queue
-- KEYS: [3] fresh, [6..] queues. ARGV: the settings (lib/settings.lua).

-- What the fast path last did per node (by node key): the guard it left, the samples it wrote (ARGV from
-- the first sample on), each GPU's guard line parsed (with the free shares and reserve it wrote), the
-- answer lines and session counts. A cache in the library's Lua state, which every call of every client
-- shares (emptied when the library loads again, when a call of another store comes, and at
-- LAST_REPORT_LIMIT entries): when a node's guard is the one the fast path left, what it parsed is still
-- what Redis holds (every other writer of the samples or of what the guard holds changes the guard, and
-- the full path forgets the node); and with the same samples again nothing but their times can move, so
-- that is all it writes.
F.LAST_REPORT = {}
F.LAST_REPORT_SIZE = { 0 }
F.LAST_REPORT_LIMIT = 100000

function F.forget_report(node_id)
  F.LAST_REPORT[F.node_key(node_id)] = nil
end

-- Whether ARGV from `first` on holds exactly `samples` (an array of the same strings).
function F.same_samples(samples, first)
  if #ARGV - first + 1 ~= #samples then
    return false
  end
  for i = 1, #samples do
    if ARGV[first + i - 1] ~= samples[i] then
      return false
    end
  end
  return true
end

-- A guard line: 19 fields, the model last (everything after the 18th comma).
F.GUARD_PATTERN = '^' .. string.rep('([^,]*),', 18) .. '(.*)$'

-- The guard line of GPU `g` (load_gpu table after the report and its indexing), `hash` its stored
-- fields, `count` its sessions; nil when its texts would not parse back (a ',' or ';' in a name).
function F.guard_line(g, hash, count)
  if string.find(g.model, '[,;]') or (g.pool and string.find(g.pool, '[,;]')) then
    return nil
  end
  local capacity = ''
  if g.encoder_scope == 'gpu' and g.encoder_limit ~= nil then
    capacity = F.fmt(g.encoder_limit)
  end
  return table.concat({ hash.cg, hash.ce, hash.cv, hash.cs, hash.pg or '', hash.pe or '', hash.pv or '',
    hash.ps or '', hash.rf or '', F.fmt(count), hash.memoryTotal, hash.modelVram or '', capacity,
    g.hostable and '1' or '0', hash.throttleTemperature, g.eligible == '1' and '1' or '0', g.pool or '',
    hash.rv or '', g.model }, ',')
end

-- A guard line as the fast path reads it (numbers decoded as load_gpu decodes them), with the GPU's
-- keys; nil when it does not parse. fg, fs (the indexed free shares) and eg, ee, ev (the effective
-- loads they were computed from) are unknown here: the fast path fills them in.
function F.parse_guard_line(line, node_id, slot)
  local cg, ce, cv, cs, pg, pe, pv, ps, rf, count, memory_total, model_vram, capacity, hostable,
    throttle_temperature, eligible, pool, rv, model = string.match(line, F.GUARD_PATTERN)
  if not model then
    return nil
  end
  local gid = F.gpu_id(node_id, slot - 1)
  return {
    cg = tonumber(cg), ce = tonumber(ce), cv = tonumber(cv), cs = tonumber(cs),
    pg = F.num(pg), pe = F.num(pe), pv = F.num(pv), ps = F.num(ps), ps_text = ps == '' and '0' or ps,
    floor = tonumber(rf) or 0, count = count, memory_total_text = memory_total,
    memory_total = tonumber(memory_total), model_vram = F.num(model_vram), capacity = F.num(capacity),
    hostable = hostable == '1', hot_at = tonumber(throttle_temperature) - F.TEMPERATURE_MARGIN,
    eligible = eligible, rv = rv, model = model, gid = gid, key = F.gpu_key(gid),
    pool_gpu = F.pool_key('gpu', pool), pool_stream = F.pool_key('stream', pool),
  }
end

-- One GPU of the brief answer: eligible, stale, throttle, mg, me, mv, ms, memoryTotal, rv, ps, model
-- (numbers as stored, '' when unknown; the model last).
function F.brief_line(eligible, stale, throttle, mg, me, mv, ms, memory_total, rv, ps, model)
  return table.concat({ eligible, stale, throttle, mg, me, mv, ms, memory_total, rv, ps, model }, ',')
end

-- The brief answer: {state, stateChangedAt, GPU lines joined by ';', node dump or 0, sessions waiting in
-- the queue, session replies...}
-- (the sessions of GPUs with sessions, GPU by GPU in commit order, when `with_sessions`).
function F.brief_reply(node_id, state, changed_at, lines, dump, counts, with_sessions)
  local out = { state, changed_at, lines, dump or 0, F.queue_length() }
  if with_sessions then
    for i, count in ipairs(counts) do
      if count > 0 then
        F.append_gpu_sessions(out, node_id, i - 1)
      end
    end
  end
  return out
end

-- The fast path: nil when the report needs the full path (no write made), else the brief answer.
-- `head`: HMGET of the node's tg, state, stateChangedAt, systemEncoderLimit; `first`: the ARGV position of
-- the first sample (10 arguments each).
function F.telemetry_fast(node_id, head, first, with_sessions)
  local key = F.node_key(node_id)
  local guard = head[1]
  local last = F.LAST_REPORT[key]
  if last and last.guard ~= guard then
    last = nil
  end
  if last and F.same_samples(last.samples, first) then
    -- The same samples again: only their times move.
    local fresh = {}
    for slot, p in ipairs(last.gpus) do
      redis.call('HSET', p.key, 'telemetryAt', ARGV[3], 'sampledAt', ARGV[4])
      fresh[2 * slot - 1] = ARGV[3]
      fresh[2 * slot] = p.gid
    end
    redis.call('ZADD', F.K_FRESH, unpack(fresh))
    return F.brief_reply(node_id, head[2], head[3], last.lines, nil, last.counts, with_sessions)
  end
  local parsed
  if last then
    parsed = last.gpus
  else
    parsed = {}
    for line in string.gmatch(guard, '[^;]+') do
      local p = F.parse_guard_line(line, node_id, #parsed + 1)
      if not p then
        return nil
      end
      parsed[#parsed + 1] = p
    end
  end
  local gpu_count = #parsed
  if (#ARGV - first + 1) ~= 10 * gpu_count then
    return nil
  end
  -- Each GPU as the full path would load it after the report: the samples and, without sessions, the
  -- reserve they make (record-telemetry.lua).
  local at_of, loads = {}, {}
  for at = first, #ARGV, 10 do
    local index = tonumber(ARGV[at])
    if index == nil or index < 0 or index >= gpu_count or index ~= math.floor(index) or at_of[index + 1] then
      return nil
    end
    local p = parsed[index + 1]
    local total = ARGV[at + 5]
    if total ~= '' and total ~= p.memory_total_text then
      return nil
    end
    local mv = F.num(ARGV[at + 3])
    local rv = p.rv
    if p.count == '0' then
      -- Without sessions the reserve follows the measured VRAM (record-telemetry.lua); the guard's is
      -- not kept up to date then, so an unknown VRAM sample (which keeps the stored one) goes the full way.
      if mv == nil then
        return nil
      end
      rv = F.fmt(math.min(math.max(p.floor, mv), math.max(p.floor, p.memory_total or p.floor)))
    end
    at_of[index + 1] = at
    loads[index + 1] = { cg = p.cg, ce = p.ce, cv = p.cv, cs = p.cs, mg = F.num(ARGV[at + 1]),
      me = F.num(ARGV[at + 2]), mv = mv, ms = F.num(ARGV[at + 4]), pg = p.pg, pe = p.pe, pv = p.pv, ps = p.ps,
      rv = F.num(rv), rv_text = rv, memory_total = p.memory_total, model_vram = p.model_vram }
  end
  -- Eligibility (F.is_eligible; the GPU is fresh and has telemetry now) must stay what it is.
  local state = head[2]
  local system_limit = F.num(head[4])
  local in_use = 0
  for _, g in ipairs(loads) do
    g.eff_s = F.eff_sessions(g)
    in_use = in_use + g.eff_s
  end
  for slot, p in ipairs(parsed) do
    local at, g = at_of[slot], loads[slot]
    local eligible = state == 'ready' and p.hostable and ARGV[at + 7] ~= '1'
    if eligible then
      local temperature = F.num(ARGV[at + 6])
      if temperature ~= nil and temperature >= p.hot_at then
        eligible = false
      elseif p.capacity ~= nil and g.eff_s >= p.capacity then
        eligible = false
      elseif system_limit ~= nil and in_use >= system_limit then
        eligible = false
      end
    end
    if (eligible and '1' or '0') ~= p.eligible then
      return nil
    end
  end
  -- The full path's writes; the pool scores that moved as one ZADD per sorted set (in the order first
  -- met) after the GPUs' HSETs, the scores of a node's GPUs mostly sharing their two pool sets.
  local fresh, out_lines, counts = {}, {}, {}
  local moved, moved_keys = {}, {}
  local function move(key, score, gid)
    local list = moved[key]
    if not list then
      list = {}
      moved[key] = list
      moved_keys[#moved_keys + 1] = key
    end
    list[#list + 1] = score
    list[#list + 1] = gid
  end
  for slot, p in ipairs(parsed) do
    local at, g = at_of[slot], loads[slot]
    local fields = { 'mg', ARGV[at + 1], 'me', ARGV[at + 2], 'mv', ARGV[at + 3], 'ms', ARGV[at + 4],
      'temperature', ARGV[at + 6], 'throttle', ARGV[at + 7], 'telemetryAt', ARGV[3], 'stale', '0',
      'sampledAt', ARGV[4] }
    if g.rv_text ~= p.last_rv then
      fields[#fields + 1], fields[#fields + 2] = 'rv', g.rv_text
      p.last_rv = g.rv_text
    end
    if p.eligible == '1' then
      -- index_gpu: the free shares, rewritten (hash and pool scores) when they moved or are not known.
      local eg, ee, ev = F.eff_gpu(g), F.eff_enc(g), F.eff_vram(g)
      if eg ~= p.eg then
        local free_gpu = F.fmt((F.GPU_CAP - eg) / F.GPU_CAP)
        if free_gpu ~= p.fg then
          move(p.pool_gpu, free_gpu, p.gid)
          fields[#fields + 1], fields[#fields + 2] = 'fg', free_gpu
          p.fg = free_gpu
        end
        p.eg = eg
      end
      if ee ~= p.ee or ev ~= p.ev then
        local free_stream = F.fmt(F.stream_free(g))
        if free_stream ~= p.fs then
          move(p.pool_stream, free_stream, p.gid)
          fields[#fields + 1], fields[#fields + 2] = 'fs', free_stream
          p.fs = free_stream
        end
        p.ee, p.ev = ee, ev
      end
    end
    if ARGV[at + 5] ~= '' then
      fields[#fields + 1], fields[#fields + 2] = 'memoryTotal', ARGV[at + 5]
    end
    if ARGV[at + 8] ~= '' then
      fields[#fields + 1], fields[#fields + 2] = 'uuid', ARGV[at + 8]
    end
    if ARGV[at + 9] ~= '' then
      fields[#fields + 1], fields[#fields + 2] = 'name', ARGV[at + 9]
    end
    redis.call('HSET', p.key, unpack(fields))
    fresh[2 * slot - 1] = ARGV[3]
    fresh[2 * slot] = p.gid
    counts[slot] = tonumber(p.count)
    out_lines[slot] = F.brief_line(p.eligible, '0', ARGV[at + 7], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3],
      ARGV[at + 4], p.memory_total_text, g.rv_text, p.ps_text, p.model)
  end
  for _, pool_key in ipairs(moved_keys) do
    redis.call('ZADD', pool_key, unpack(moved[pool_key]))
  end
  redis.call('ZADD', F.K_FRESH, unpack(fresh))
  local text = table.concat(out_lines, ';')
  if not F.LAST_REPORT[key] then
    if F.LAST_REPORT_SIZE[1] >= F.LAST_REPORT_LIMIT then
      F.LAST_REPORT = {}
      F.LAST_REPORT_SIZE[1] = 0
    end
    F.LAST_REPORT_SIZE[1] = F.LAST_REPORT_SIZE[1] + 1
  end
  F.LAST_REPORT[key] = { guard = guard, samples = { unpack(ARGV, first) }, gpus = parsed, lines = text,
    counts = counts }
  return F.brief_reply(node_id, state, head[3], text, nil, counts, with_sessions)
end
