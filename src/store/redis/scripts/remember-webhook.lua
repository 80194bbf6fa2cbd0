-- remember-webhook: claims a webhook delivery key unless a live claim exists (SET ... PX, checked
-- against the caller's clock too, so a fake clock and Redis's own expiry agree).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] delivery key, [3] result JSON, [4] ttl (ms), [5] now (ms).
-- Returns: {1} when claimed now; {0, remembered result JSON} for a replay.
local key = F.BASE .. ':webhook:' .. ARGV[2]
local now = tonumber(ARGV[5])
local ttl = tonumber(ARGV[4])
local known = redis.call('GET', key)
if known then
  local separator = string.find(known, ':', 1, true)
  if tonumber(string.sub(known, 1, separator - 1)) > now then
    return { 0, string.sub(known, separator + 1) }
  end
end
redis.call('SET', key, string.format('%.17g', now + ttl) .. ':' .. ARGV[3], 'PX', math.max(1, math.ceil(ttl)))
return { 1 }
