-- reset-cost-evidence: deletes the learned-cost evidence sums whose key names a title (keys are
-- `<model>|<dimension>|<kind>|<title>[|<title>]`, src/cost/cost-learner.ts).
-- KEYS: the fixed keys of lib/keys.lua (the evidence hash is built from their base).
-- ARGV: [1] settings (lib/settings.lua), [2] the title.
-- Returns: how many sums went.
local evidence = F.cost_evidence_key()
local title = ARGV[2]
local doomed = {}
for _, key in ipairs(redis.call('HKEYS', evidence)) do
  local parts = {}
  for part in string.gmatch(key, '[^|]+') do
    parts[#parts + 1] = part
  end
  if parts[4] == title or parts[5] == title then
    doomed[#doomed + 1] = key
  end
end
for at = 1, #doomed, 1000 do
  redis.call('HDEL', evidence, unpack(doomed, at, math.min(at + 999, #doomed)))
end
return #doomed
