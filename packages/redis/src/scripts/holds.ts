/**
 * Lua for holds (reservations), shared by the batch and apply scripts (the seed, set and delete
 * scripts use only `drop_holds`). A counter's holds live in its hash-tag group, next to it:
 * `<counter>:holds`, a sorted set of hold ids scored by expiry (server ms); `<counter>:held`, a
 * hash of each hold's units and length (`<units>|<holdMs>`); and, once a hold is settled,
 * `<counter>:settled:<id>`, kept for the hold's length so settling it again answers the same.
 * The script derives these names from the counter's key rather than taking them in KEYS: they
 * share its hash tag, hence its slot
 * (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags), and a
 * consume that fits never touches them, so declaring them would cost every call for nothing.
 *
 * They live and die with the counter (the contract's "a hold lives ... with its lifetime"):
 * - Each hold added gives `:holds` and `:held` the counter's remaining lifetime (none when it
 *   has none), so they expire at the same instant as the counter: its TTL is set on creation
 *   and never re-armed (`KEEPTTL` everywhere else).
 * - The counter can still go missing without them (eviction under maxmemory, a DEL of the
 *   counter key alone). Every script that creates the counter (apply, batch, seed, set) deletes
 *   them with `drop_holds` in the same script call, before any hold of the new counter is added
 *   or settled: an old hold's settle or expiry would otherwise give its units back to the new
 *   counter, which never counted them, and the quota would grant more than its limit. Only
 *   creation pays for this, never the hot path.
 * - A `:settled:<id>` marker is not deleted (its name needs the id) and may outlive the counter
 *   for at most its hold's length: settling that old hold then answers "settled before" and
 *   changes nothing, as it would have on the old counter.
 *
 * Needs the prelude's `now_ms` and `MAX`.
 */
export const HOLDS = `
-- Delete the counter's holds: on delete, and before a script creates the counter (see above).
local function drop_holds(key)
  redis.call('DEL', key .. ':holds', key .. ':held')
end

-- Units of the counter's expired holds, taken out of the holds (the caller gives them back).
local function take_expired_holds(key)
  local holds = key .. ':holds'
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now_ms())
  if #expired == 0 then return 0 end
  local held = key .. ':held'
  local units = 0
  for i = 1, #expired, 500 do
    local chunk = {}
    for j = i, math.min(i + 499, #expired) do chunk[#chunk + 1] = expired[j] end
    local parts = redis.call('HMGET', held, unpack(chunk))
    for j = 1, #parts do
      if parts[j] then units = units + tonumber(string.match(parts[j], '^(%d+)')) end
    end
    redis.call('ZREM', holds, unpack(chunk))
    redis.call('HDEL', held, unpack(chunk))
  end
  return units
end

-- Record a hold of 'units' for 'hold_ms'; its keys live as long as the counter ('pttl', '' = no expiry).
local function add_hold(key, id, units, hold_ms, pttl)
  local holds = key .. ':holds'
  local held = key .. ':held'
  redis.call('ZADD', holds, now_ms() + tonumber(hold_ms), id)
  redis.call('HSET', held, id, string.format('%d', units) .. '|' .. hold_ms)
  if pttl ~= '' then
    redis.call('PEXPIRE', holds, pttl)
    redis.call('PEXPIRE', held, pttl)
  end
end

-- A live hold's units and length, or nil when the hold is gone or expired.
local function live_hold(key, id)
  local expires = redis.call('ZSCORE', key .. ':holds', id)
  if not expires or tonumber(expires) <= now_ms() then return nil end
  local part = redis.call('HGET', key .. ':held', id)
  if not part then return nil end
  local units, hold_ms = string.match(part, '^(%d+)|(%d+)$')
  return tonumber(units), hold_ms
end

-- Take a settled hold out, and remember it for its length.
local function settle_hold(key, id, hold_ms)
  redis.call('ZREM', key .. ':holds', id)
  redis.call('HDEL', key .. ':held', id)
  redis.call('SET', key .. ':settled:' .. id, '1', 'PX', hold_ms)
end

local function was_settled(key, id)
  return redis.call('EXISTS', key .. ':settled:' .. id) == 1
end
-- Whether a counter value passes its upper bound: the op's limit ('' = none), or 2^53 - 1.
local function over_bound(value, bound)
  return (bound ~= '' and value > tonumber(bound)) or value > MAX
end
-- The value a delta brings counter state s to. When a positive delta would pass the bound of a
-- counter that exists, its expired holds are given back first (the script's own reclaim, once
-- per call) and the value is computed again: a refusal for units that expired holds still count
-- would be wrong.
local function next_value(key, s, delta, bound, reclaim)
  local value = s.v + delta
  if delta > 0 and s.exists and not s.reclaimed and over_bound(value, bound) then
    reclaim(key, s)
    value = s.v + delta
  end
  return value
end
`
