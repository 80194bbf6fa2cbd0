-- queue: the waiting queue, one sorted set per priority class, highest class first.
-- requires: base, keys, settings
-- KEYS: [2] seq, [6..] the queue of each class. ARGV: the settings (lib/settings.lua), for the classes.

function F.class_rank(class)
  for i, name in ipairs(F.CLASSES) do
    if name == class then
      return i
    end
  end
  return nil
end

function F.queue_key(class)
  local rank = F.class_rank(class)
  if not rank then
    F.fail('VCA_ERR_UNKNOWN_PRIORITY', 'Priority class "' .. tostring(class) .. '" is not configured')
  end
  return KEYS[F.QUEUE_KEY_OFFSET + rank]
end

function F.queue_length()
  local total = 0
  for i = 1, #F.CLASSES do
    total = total + redis.call('ZCARD', KEYS[F.QUEUE_KEY_OFFSET + i])
  end
  return total
end

-- 1-based position across classes: sizes of the higher classes plus the rank within its own.
function F.queue_position(session)
  local rank = F.class_rank(session.priority)
  local position = 0
  for i = 1, rank - 1 do
    position = position + redis.call('ZCARD', KEYS[F.QUEUE_KEY_OFFSET + i])
  end
  return position + redis.call('ZRANK', KEYS[F.QUEUE_KEY_OFFSET + rank], session.id) + 1
end

-- Back of its class, or the front (a migrated session waits first): below the class's lowest score.
function F.enqueue(session, at_front)
  local key = F.queue_key(session.priority)
  local score
  if at_front then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #first > 0 then
      score = tonumber(first[2]) - 1
    end
  end
  if score == nil then
    score = redis.call('INCR', F.K_SEQ)
  end
  redis.call('ZADD', key, score, session.id)
end
