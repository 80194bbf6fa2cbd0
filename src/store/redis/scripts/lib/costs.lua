-- costs: a session's cost vector as text (parse_cost, cost_text: emitted from costFields in
-- src/store/redis/hash-layouts.ts) and its cost on one model (cost_on).
-- requires: base
-- KEYS, ARGV: none.

-- emit: cost-text

-- The cost on `model` from a session's pick costs ('\n<model>\t<cost>\t<model VRAM MiB>\n...'), and
-- the model's catalog VRAM (nil in a line written before it was added), or nil.
function F.cost_on(costs, model)
  local at = string.find(costs, '\n' .. model .. '\t', 1, true)
  if not at then
    return nil
  end
  local from = at + #model + 2
  local line = string.sub(costs, from, string.find(costs, '\n', from, true) - 1)
  local tab = string.find(line, '\t', 1, true)
  if not tab then
    return F.parse_cost(line), nil
  end
  return F.parse_cost(string.sub(line, 1, tab - 1)), tonumber(string.sub(line, tab + 1))
end
