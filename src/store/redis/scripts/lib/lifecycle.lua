-- lifecycle: node transitions (the table is emitted from src/fleet/node-state.ts), removal, and
-- telemetry going stale. A move to drained writes the node's drain-complete callback to the outbox.
-- requires: base, keys, settings, nodes, pools, outbox
-- KEYS: [1] nodes, [3] fresh, the draining index. ARGV: the settings (lib/settings.lua).

-- emit: allowed-transitions

function F.check_transition(node, to)
  if node.state == to then
    return
  end
  local allowed = F.ALLOWED_TRANSITIONS[node.state]
  if not allowed or not allowed[to] then
    F.fail('VCA_ERR_NODE_STATE', 'Node "' .. node.id .. '" cannot go from ' .. node.state .. ' to ' .. to)
  end
end

function F.delete_node(node)
  for i = 0, node.gpu_count - 1 do
    local gid = F.gpu_id(node.id, i)
    local pool = redis.call('HGET', F.gpu_key(gid), 'pool')
    if pool and pool ~= '' then
      redis.call('ZREM', F.pool_key('gpu', pool), gid)
      redis.call('ZREM', F.pool_key('stream', pool), gid)
    end
    redis.call('ZREM', F.K_FRESH, gid)
    redis.call('DEL', F.gpu_key(gid), F.gpu_sessions_key(gid), F.gpu_pending_key(gid))
  end
  redis.call('DEL', F.node_key(node.id))
  redis.call('ZREM', F.K_DRAINING, node.id)
  redis.call('ZREM', F.K_NODES, node.id)
end

-- Same as FleetState.transition: validates first, so a refused move writes nothing.
function F.transition(node, to, now)
  if node.state == to then
    return
  end
  F.check_transition(node, to)
  node.state = to
  if to == 'removed' then
    F.delete_node(node)
    return
  end
  if to ~= 'draining' then
    redis.call('HSET', F.node_key(node.id), 'state', to, 'stateChangedAt', now, 'drainDeadline', '', 'tg', '')
    redis.call('ZREM', F.K_DRAINING, node.id)
    if to == 'drained' then
      F.add_node_drained(node, now)
    end
  else
    redis.call('HSET', F.node_key(node.id), 'state', to, 'stateChangedAt', now, 'tg', '')
    redis.call('ZADD', F.K_DRAINING, redis.call('ZSCORE', F.K_NODES, node.id), node.id)
  end
  F.refresh_node(node)
end

-- Marks GPUs whose telemetry arrived before now - staleAfterMs; a ready node whose every GPU went
-- silent becomes unhealthy (its sessions keep running).
function F.sweep_stale(now)
  local old = redis.call('ZRANGEBYSCORE', F.K_FRESH, '-inf', '(' .. F.fmt(now - F.STALE_AFTER_MS))
  if #old == 0 then
    return
  end
  local touched, order = {}, {}
  for _, gid in ipairs(old) do
    redis.call('ZREM', F.K_FRESH, gid)
    redis.call('HSET', F.gpu_key(gid), 'stale', '1')
    local node_id = redis.call('HGET', F.gpu_key(gid), 'node')
    if node_id and not touched[node_id] then
      touched[node_id] = true
      order[#order + 1] = node_id
    end
  end
  for _, node_id in ipairs(order) do
    local node = F.load_node(node_id)
    if node then
      F.clear_node_guard(node)
      local all_stale = true
      for i = 0, node.gpu_count - 1 do
        if redis.call('HGET', F.gpu_key(F.gpu_id(node_id, i)), 'stale') ~= '1' then
          all_stale = false
          break
        end
      end
      if node.state == 'ready' and all_stale then
        F.transition(node, 'unhealthy', now)
      else
        F.refresh_node(node)
      end
    end
  end
end
