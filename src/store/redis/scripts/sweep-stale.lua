-- sweep-stale: makes GPUs whose telemetry is older than staleAfterMs stale and ineligible; a ready
-- node whose every GPU is stale becomes unhealthy.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] now (ms).
-- Returns: 1.
F.sweep_stale(tonumber(ARGV[2]))
return 1
