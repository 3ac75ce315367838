import { HOLDS } from './holds.js'
import { PRELUDE } from './prelude.js'

/**
 * apply: several bounded changes, all or nothing (consumeAll's and reserveAll's atomic path,
 * a multi-key give-back or commit). Calls on one counter go through the batch script instead.
 *
 * KEYS: the n op keys in op order (a key may repeat), then the idempotency record when
 *   ARGV[3] is not '', then the record to delete, when there is one more key.
 * ARGV: [1] deadline (see the prelude), [2] n, [3] the idempotency record's lifetime in ms
 *   ('' = no record), then seven per op: delta, bound ('' = none; the max when delta > 0, the
 *   min when delta < 0, unused when 0), ttlMs ('' = none; used only when the op creates the
 *   counter), ifMissing ('c' create, 'r' report), kind ('' plain, 'h' hold its units, 's'
 *   settle a hold), hold id ('h', 's'), holdMs ('h') or units to keep ('s').
 * Reply: {'ok', v1, ttl1, ..., vn, ttln} | {'settled', v1, ttl1, ...} (every op settles a hold
 *   settled before: nothing changed) | {'replay', 'v1,ttl1,...', ms since it was recorded} |
 *   {'refused', index (0-based), 'limit'|'floor'|'missing'|'hold', v1, ttl1, ...} | {'expired'}.
 * The record holds '<server time when written (ms)>|v1,ttl1,...': a replay reports each
 * lifetime less the time since, so it names the reset time the recorded call did. Expired
 * holds of a counter are given back before an op on it is refused for the bound (see `holds.ts`).
 * An op that gives units back (delta < 0, or 's') to a counter missing when the call runs
 * deletes the counter's loader lock `<key>:lock` (derived from its key, like the holds' keys,
 * so in its slot), whatever the answer but a replay: a load in progress may have read usage
 * that still counts those units, and its seed with its token is then refused (see `seed.ts`).
 * A counter an op creates starts without holds: any left by an earlier counter of its key (one
 * evicted or deleted without them) count for nothing in this call's checks (a settle of one is
 * refused 'hold', none is given back before a refusal for the bound), and they are deleted when
 * the call writes the counter (see `holds.ts`).
 */
export const APPLY_LUA = `${PRELUDE}${HOLDS}
local n = tonumber(ARGV[2])        -- ops in this call
local record_ttl = ARGV[3]         -- the idempotency record's lifetime, ms ('' = no record)
local record_key = nil             -- the idempotency record to write
local clear_key = nil              -- the idempotency record to delete
local extra = n
if record_ttl ~= '' then extra = extra + 1; record_key = KEYS[extra] end
if #KEYS > extra then extra = extra + 1; clear_key = KEYS[extra] end

-- Each op's key and its seven arguments, read once.
local ops = {}
for i = 1, n do
  local arg = 4 + (i - 1) * 7
  ops[i] = {
    key = KEYS[i],
    delta = tonumber(ARGV[arg]),
    bound = ARGV[arg + 1],         -- the max when delta > 0, the min when delta < 0 ('' = none)
    ttl = ARGV[arg + 2],           -- ms, for a counter this op creates ('' = none)
    report = ARGV[arg + 3] == 'r', -- a missing counter is reported, not created
    kind = ARGV[arg + 4],          -- '' plain, 'h' hold its units, 's' settle a hold
    hold_id = ARGV[arg + 5],       -- the hold made ('h') or settled ('s')
    hold_value = ARGV[arg + 6],    -- holdMs ('h') or units to keep ('s')
  }
end

if record_key then
  local record = redis.call('GET', record_key)
  if record then
    local written, result = string.match(record, '^(%d+)|(.*)$')
    if not written then error('the idempotency record ' .. record_key .. ' is not one this store wrote') end
    return {'replay', result, string.format('%d', math.max(now_ms() - tonumber(written), 0))}
  end
end

-- Each counter's running state, so ops on one key see each other.
local state = {}
local function current(key)
  local s = state[key]
  if s == nil then
    local raw = redis.call('GET', key)
    local v = 0
    if raw then
      v = integer_of(raw)
      if v == nil then error('counter ' .. key .. ' does not hold an integer within 2^53') end
    end
    s = { v = v, exists = raw ~= false and raw ~= nil, created = false, ttl = '', dirty = false, holds = {}, settles = {} }
    state[key] = s
  end
  return s
end

-- Give back the counter's expired holds now (they are gone whatever this call decides). Those
-- of a counter this call creates were made on an earlier counter of the key: this one never
-- counted their units, so they are taken out without giving anything back.
local function reclaim(key, s)
  s.reclaimed = true
  local units = take_expired_holds(key)
  if units > 0 and s.exists and not s.created then
    s.v = math.max(s.v - units, 0)
    local stored = integer_of(redis.call('GET', key) or '0') or 0
    redis.call('SET', key, string.format('%d', math.max(stored - units, 0)), 'KEEPTTL')
  end
end

-- A give-back that meets a missing counter revokes a load of it in progress (see above). It
-- comes before the checks so that it holds whatever they answer (a refused op anywhere in the
-- call, 'missing', or an error after it: a revoked load only reads the system of record again).
for i = 1, n do
  local op = ops[i]
  if (op.delta < 0 or op.kind == 's') and not current(op.key).exists then revoke_load(op.key) end
end

local function refuse(index, reason)
  local out = {'refused', tostring(index), reason}
  for i = 1, n do
    local raw = redis.call('GET', ops[i].key)
    if raw then
      out[#out + 1] = raw
      out[#out + 1] = pttl_of(ops[i].key)
    else
      out[#out + 1] = ''
      out[#out + 1] = ''
    end
  end
  return out
end

-- Check every op first; write only when all of them fit. A counter to report missing is
-- reported only when no other op is refused: loading it could not make the call fit.
local missing = nil
local unknown = {}
local replayed_settles = 0
for i = 1, n do
  local op = ops[i]
  local key, delta, bound = op.key, op.delta, op.bound
  local s = current(key)
  if unknown[key] or (not s.exists and op.report) then
    if missing == nil then missing = i - 1 end
    unknown[key] = true
  elseif op.kind == 's' then
    local id = op.hold_id
    local units, hold_ms = nil, nil
    -- A counter created earlier in this call has no holds yet (what is there is stale, see above).
    if s.exists and not s.created then units, hold_ms = live_hold(key, id) end
    if units then
      local give = units - math.min(tonumber(op.hold_value), units)
      s.v = math.max(s.v - give, 0)
      s.dirty = true
      s.settles[#s.settles + 1] = { id = id, hold_ms = hold_ms }
    elseif was_settled(key, id) then
      replayed_settles = replayed_settles + 1
    else
      if not s.reclaimed then reclaim(key, s) end
      return refuse(i - 1, 'hold')
    end
  else
    local nxt = next_value(key, s, delta, bound, reclaim)
    if delta > 0 and over_bound(nxt, bound) then return refuse(i - 1, 'limit') end
    if delta < 0 and bound ~= '' and nxt < tonumber(bound) then return refuse(i - 1, 'floor') end
    if delta ~= 0 then
      if not s.exists then
        s.exists = true
        s.created = true
        s.ttl = op.ttl
      end
      s.v = nxt
      s.dirty = true
    end
    if op.kind == 'h' and delta > 0 then s.holds[#s.holds + 1] = { id = op.hold_id, units = delta, hold_ms = op.hold_value } end
  end
end
if missing ~= nil then return refuse(missing, 'missing') end

for i = 1, n do
  local key = ops[i].key
  local s = state[key]
  if s.dirty then
    s.dirty = false
    if s.created then drop_holds(key) end
    write_counter(key, s)
    for _, settled in ipairs(s.settles) do settle_hold(key, settled.id, settled.hold_ms) end
    local pttl = ''
    if #s.holds > 0 then pttl = pttl_of(key) end
    for _, hold in ipairs(s.holds) do add_hold(key, hold.id, hold.units, hold.hold_ms, pttl) end
  end
end

local out = {'ok'}
if replayed_settles == n then out[1] = 'settled' end
for i = 1, n do
  local s = state[ops[i].key]
  out[#out + 1] = string.format('%d', s.v)
  if s.exists then out[#out + 1] = pttl_of(ops[i].key) else out[#out + 1] = '' end
end
-- A settle that only replays changed nothing: the record it would clear stays the earlier call's.
if clear_key and replayed_settles < n then redis.call('DEL', clear_key) end
if record_key then
  local parts = {}
  for i = 2, #out do parts[#parts + 1] = out[i] end
  redis.call('SET', record_key, string.format('%d', now_ms()) .. '|' .. table.concat(parts, ','), 'PX', record_ttl)
end
return out
`
