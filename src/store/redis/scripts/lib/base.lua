-- base: what every other file builds on: raising a VCA error, and writing and reading numbers.
-- KEYS, ARGV: none.
-- Errors: validation failures raise `error({err = '<VCA_ERR_CODE> <message>'})` BEFORE any write (a
--   Redis script is not rolled back), and the TypeScript side turns them into VcaErrors.
-- Numbers: committed loads are integers (ppm, MiB, sessions), so committed == sum of session costs
--   holds exactly; Lua numbers are doubles, exact for integers below 2^53. Numbers are written as
--   '%.17g' strings (exact round trip); '' stands for an unknown value.

function F.fail(code, message)
  error({ err = code .. ' ' .. message })
end

-- Integers (committed loads, times, counts: most numbers written) take '%d', which prints the same
-- digits as '%.17g' within 1e15 of 0 without its multi-precision float conversion (a tenth of Redis's
-- time in the hot scripts went to it); 0 (not -0, whose reciprocal is -inf) is the constant '0';
-- -0 and everything else take '%.17g'.
function F.fmt(value)
  if type(value) == 'number' and value < 1e15 and value > -1e15 and value % 1 == 0 then
    if value ~= 0 then
      return string.format('%d', value)
    elseif 1 / value > 0 then
      return '0'
    end
  end
  return string.format('%.17g', value)
end

-- A stored number, or nil when unknown ('' or no field).
function F.num(value)
  if value == nil or value == false or value == '' then
    return nil
  end
  return tonumber(value)
end

-- A number to store, '' when unknown.
function F.opt(value)
  if value == nil then
    return ''
  end
  return F.fmt(value)
end

function F.hgetall(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then
    return nil
  end
  local map = {}
  for i = 1, #flat, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end
