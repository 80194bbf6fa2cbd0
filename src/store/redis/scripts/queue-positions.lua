-- queue-positions: the queued session ids in service order (classes highest first, FIFO within).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua).
-- Returns: an array of session ids; position = array index (1-based).
local out = {}
for rank = 1, #F.CLASSES do
  for _, id in ipairs(redis.call('ZRANGE', KEYS[F.QUEUE_KEY_OFFSET + rank], 0, -1)) do
    out[#out + 1] = id
  end
end
return out
