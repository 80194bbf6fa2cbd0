-- complete-outbox: removes an outbox entry (its callback was delivered, or given up).
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] entry id.
-- Returns: 1 when it removed the entry, 0 when the entry was already gone.
local removed = redis.call('ZREM', F.K_OUTBOX, ARGV[2])
redis.call('DEL', F.outbox_entry_key(ARGV[2]))
return removed
