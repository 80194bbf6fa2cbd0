-- latency: latency-aware placement, as src/placement/latency-policy.ts defines it: the cap in force
-- at a session's age (latency_cap), the regions its plan allows (latency_plan), a pick that tries
-- them in order (pick_by_latency) and the plan's part of a queue pass's shape (latency_shape). A
-- session's `latencies` field holds its reported regions already in the order they are tried (lowest
-- latency first, ties by name: orderedLatencies), so the allowed regions are the prefix within the cap.
-- A session that reported none ('' or no field) costs nothing here beyond one comparison.
-- requires: base, settings, placement
-- KEYS: [5] pools (through placement). ARGV: the settings (lib/settings.lua).

-- True when the session reported latencies (a record written before they existed holds none).
function F.has_latencies(session)
  return session.latencies ~= nil and session.latencies ~= false and session.latencies ~= ''
end

-- The cap in force at `age` (ms), nil after the last policy: the first step of F.LATENCY_SCHEDULE
-- ('<untilAgeMs>:<maxLatencyMs> ' per step, latencySchedule in latency-policy.ts) not yet over.
function F.latency_cap(age)
  for until_age, cap in string.gmatch(F.LATENCY_SCHEDULE, '([^: ]+):([^ ]+) ') do
    if age < tonumber(until_age) then
      return tonumber(cap)
    end
  end
  return nil
end

-- The plan at `now`: the reported regions allowed, in order, and whether any other region may follow
-- (no cap in force, and unreported regions allowed). "Within the cap" is latency <= cap.
function F.latency_plan(session, now)
  local cap = F.latency_cap(now - session.createdAt)
  local regions = {}
  for _, entry in ipairs(cjson.decode(session.latencies)) do
    if cap ~= nil and entry[2] > cap then
      break
    end
    regions[#regions + 1] = entry[1]
  end
  return regions, cap == nil and F.ALLOW_UNREPORTED_REGIONS
end

-- As F.pick, for a session's latency plan at `now`: each allowed region in order (only the session's
-- own region, when it names one), then any region when the plan allows others; the first region with
-- room wins. Without latencies, exactly F.pick.
function F.pick_by_latency(session, strategy, exclude, now)
  if not F.has_latencies(session) then
    return F.pick(session, strategy, exclude)
  end
  local regions, others = F.latency_plan(session, now)
  for _, region in ipairs(regions) do
    if session.region == nil or session.region == region then
      local gpu, cost, node = F.pick(session, strategy, exclude, region)
      if gpu then
        return gpu, cost, node
      end
    end
  end
  if others then
    -- The regions tried above have no room, so this finds one the gamer did not report, if any.
    return F.pick(session, strategy, exclude)
  end
  return nil
end

-- The plan's part of a session's shape at `now` ('' without latencies): its ordered latencies and how
-- many of them are allowed, which determine the plan's regions, and whether others may follow.
function F.latency_shape(session, now)
  if not F.has_latencies(session) then
    return ''
  end
  local regions, others = F.latency_plan(session, now)
  return '|' .. session.latencies .. '|' .. #regions .. (others and '+' or '')
end
