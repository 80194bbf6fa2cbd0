-- eligibility: whether a GPU may take new sessions now (is_eligible).
-- requires: settings, gpus
-- KEYS: none. ARGV: the settings (lib/settings.lua).

-- Same rules as FleetState.isEligible.
function F.is_eligible(node, g, in_use)
  if node.state ~= 'ready' or not g.hostable then
    return false
  end
  if g.stale or (g.telemetry_at == nil and F.REQUIRE_TELEMETRY) then
    return false
  end
  if g.throttle then
    return false
  end
  if g.temperature ~= nil and g.temperature >= g.throttle_temperature - F.TEMPERATURE_MARGIN then
    return false
  end
  local session_capacity = math.huge
  if g.encoder_scope == 'gpu' and g.encoder_limit ~= nil then
    session_capacity = g.encoder_limit
  end
  if F.eff_sessions(g) >= session_capacity then
    return false
  end
  if node.system_limit ~= nil and in_use >= node.system_limit then
    return false
  end
  return true
end
