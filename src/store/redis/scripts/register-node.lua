-- register-node: registers a node and its GPUs, or answers the existing node for a replay.
-- KEYS: the fixed keys of lib/keys.lua (nodes, seq, fresh, deadlines, pools, queue per class).
-- ARGV: [1] settings (lib/settings.lua), [2] node id, [3] now (ms), [4] identity (JSON of host, port,
--   protocol and GPU set, compared on re-registration), [5] registration JSON, [6] labels JSON, [7] region
--   label ('' when none), [8] system encoder session limit ('' when none), [9] GPUs JSON: an array of {model,
--   hostable, encoderLimit, encoderScope, throttleTemperature, memoryTotal} with '' for null, or '' when a
--   model is unknown, [10] the unknown-model message ('' when every model is known).
-- Returns: {created (1 or 0), node dump}. Errors: VCA_ERR_NODE_CONFLICT, VCA_ERR_UNKNOWN_GPU_MODEL.
local node_id = ARGV[2]
local verdict = F.check_registration(node_id, ARGV[4], ARGV[10], nil)
if type(verdict) == 'table' then
  F.fail(verdict[1], verdict[2])
end
if verdict == 'known' then
  return { 0, F.node_dump(node_id) }
end
F.add_node({ node_id, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9] }, tonumber(ARGV[3]))
return { 1, F.node_dump(node_id) }
