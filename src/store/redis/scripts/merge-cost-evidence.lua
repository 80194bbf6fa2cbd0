-- merge-cost-evidence: adds increments to the learned-cost evidence sums (src/cost/cost-learner.ts)
-- and answers every sum, in one step: instances sharing the store learn from each other's telemetry.
-- KEYS: the fixed keys of lib/keys.lua (the evidence hash is built from their base).
-- ARGV: [1] settings (lib/settings.lua), [2..] key, increment pairs (none: only read).
-- Returns: the evidence hash as a flat key, value list.
local evidence = F.cost_evidence_key()
for at = 2, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', evidence, ARGV[at], ARGV[at + 1])
end
return redis.call('HGETALL', evidence)
