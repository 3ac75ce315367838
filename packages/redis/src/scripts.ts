import { createHash } from 'node:crypto'

/**
 * The Lua behind every store method. Each contract method is exactly one script, so each call
 * is atomic on the server (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
 *
 * Conventions shared by every script:
 * - ARGV[1] is a deadline in the server's clock (epoch ms, integer string; "0" = none). A call
 *   that reaches the server at or after its deadline changes nothing and answers `{'expired'}`:
 *   the client has already told its caller that the call timed out, so a late delivery (a
 *   paused server, a command resent by the client library after a reconnect) must not count.
 * - Integers travel as decimal strings both ways; values are written with `string.format('%d')`
 *   because Lua 5.1 numbers are doubles and `tostring` prints 2^53 as `9.007199254741e+15`.
 * - Every reply is an array whose first element is a status string; "missing" is `''`, never a
 *   Lua nil (a nil would cut the array short).
 * - All reads and checks happen before the first write, so an error or a refusal leaves nothing
 *   half-applied (Redis does not roll back a script that fails after writing).
 */

const PRELUDE = `
local now = nil
local function now_ms()
  if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end
local deadline = tonumber(ARGV[1])
if deadline > 0 and now_ms() >= deadline then return {'expired'} end
local function pttl_of(key)
  local p = redis.call('PTTL', key)
  if p < 0 then return '' end
  if p == 0 then p = 1 end
  return string.format('%d', p)
end
`

/**
 * apply: several bounded changes, all or nothing.
 *
 * KEYS: the n op keys in op order (a key may repeat), then the idempotency record key when
 *   ARGV[3] is not '', then the record key to clear, when there is one more key.
 * ARGV: [1] deadline, [2] n, [3] the idempotency record's lifetime in ms ('' = no record),
 *   then four values per op: delta, bound ('' = none; the max when delta > 0, the min when
 *   delta < 0, unused when 0), ttlMs ('' = none; used only when the op creates the counter),
 *   ifMissing ('c' create, 'r' report). Few arguments: each one costs on both ends of every call.
 * Reply: {'ok', v1, ttl1, ..., vn, ttln} | {'replay', 'v1,ttl1,...', ms since it was recorded} |
 *   {'refused', index (0-based), 'limit'|'floor'|'missing', v1, ttl1, ...} | {'expired'}.
 * The record holds '<server time when written (ms)>|v1,ttl1,...': a replay reports each
 * lifetime less the time since, so it names the reset time the recorded call did.
 */
export const APPLY_LUA = `${PRELUDE}
local MAX = 9007199254740991
local n = tonumber(ARGV[2])
local idem_key = nil
local clear_key = nil
local extra = n
if ARGV[3] ~= '' then extra = extra + 1; idem_key = KEYS[extra] end
if #KEYS > extra then extra = extra + 1; clear_key = KEYS[extra] end

local function integer_of(key, raw)
  local v = tonumber(raw)
  if v == nil or v ~= math.floor(v) or v > MAX or v < -MAX then
    error('counter ' .. key .. ' does not hold an integer within 2^53')
  end
  return v
end

-- One op and no idempotency record (a plain consume or refund, the hot path): the rules of the
-- general path below, without its per-key state. A counter created here reports its full
-- ttlMs: PTTL would read the same, as time stands still for the keys while a script runs.
if extra == 1 then
  local key = KEYS[1]
  local delta = tonumber(ARGV[4])
  local bound = ARGV[5]
  local raw = redis.call('GET', key)
  if not raw then
    if ARGV[7] == 'r' then return {'refused', '0', 'missing', '', ''} end
    if delta > 0 and ((bound ~= '' and delta > tonumber(bound)) or delta > MAX) then return {'refused', '0', 'limit', '', ''} end
    if delta < 0 and bound ~= '' and delta < tonumber(bound) then return {'refused', '0', 'floor', '', ''} end
    if delta == 0 then return {'ok', '0', ''} end
    local value = string.format('%d', delta)
    if ARGV[6] == '' then
      redis.call('SET', key, value)
      return {'ok', value, ''}
    end
    redis.call('SET', key, value, 'PX', ARGV[6])
    return {'ok', value, ARGV[6]}
  end
  local nxt = integer_of(key, raw) + delta
  if delta > 0 and ((bound ~= '' and nxt > tonumber(bound)) or nxt > MAX) then return {'refused', '0', 'limit', raw, pttl_of(key)} end
  if delta < 0 and bound ~= '' and nxt < tonumber(bound) then return {'refused', '0', 'floor', raw, pttl_of(key)} end
  local value = string.format('%d', nxt)
  if delta ~= 0 then redis.call('SET', key, value, 'KEEPTTL') end
  return {'ok', value, pttl_of(key)}
end

if idem_key then
  local record = redis.call('GET', idem_key)
  if record then
    local written, result = string.match(record, '^(%d+)|(.*)$')
    -- A record without its write time (an earlier format) replays its lifetimes as recorded.
    if not written then return {'replay', record, '0'} end
    return {'replay', result, string.format('%d', math.max(now_ms() - tonumber(written), 0))}
  end
end

local state = {}
local function current(key)
  local s = state[key]
  if s == nil then
    local raw = redis.call('GET', key)
    local v = 0
    if raw then v = integer_of(key, raw) end
    s = { v = v, exists = raw ~= false and raw ~= nil, created = false, ttl = '', dirty = false }
    state[key] = s
  end
  return s
end

local function refuse(index, reason)
  local out = {'refused', tostring(index), reason}
  for i = 1, n do
    local raw = redis.call('GET', KEYS[i])
    if raw then
      out[#out + 1] = raw
      out[#out + 1] = pttl_of(KEYS[i])
    else
      out[#out + 1] = ''
      out[#out + 1] = ''
    end
  end
  return out
end

for i = 1, n do
  local base = 3 + (i - 1) * 4
  local delta = tonumber(ARGV[base + 1])
  local bound = ARGV[base + 2]
  local s = current(KEYS[i])
  if not s.exists and ARGV[base + 4] == 'r' then return refuse(i - 1, 'missing') end
  local nxt = s.v + delta
  if delta > 0 and ((bound ~= '' and nxt > tonumber(bound)) or nxt > MAX) then return refuse(i - 1, 'limit') end
  if delta < 0 and bound ~= '' and nxt < tonumber(bound) then return refuse(i - 1, 'floor') end
  if delta ~= 0 then
    if not s.exists then
      s.exists = true
      s.created = true
      s.ttl = ARGV[base + 3]
    end
    s.v = nxt
    s.dirty = true
  end
end

for i = 1, n do
  local key = KEYS[i]
  local s = state[key]
  if s.dirty then
    s.dirty = false
    local value = string.format('%d', s.v)
    if not s.created then
      redis.call('SET', key, value, 'KEEPTTL')
    elseif s.ttl ~= '' then
      redis.call('SET', key, value, 'PX', s.ttl)
    else
      redis.call('SET', key, value)
    end
  end
end

local out = {'ok'}
for i = 1, n do
  local s = state[KEYS[i]]
  out[#out + 1] = string.format('%d', s.v)
  if s.exists then out[#out + 1] = pttl_of(KEYS[i]) else out[#out + 1] = '' end
end
if clear_key then redis.call('DEL', clear_key) end
if idem_key then
  local parts = {}
  for i = 2, #out do parts[#parts + 1] = out[i] end
  redis.call('SET', idem_key, string.format('%d', now_ms()) .. '|' .. table.concat(parts, ','), 'PX', ARGV[3])
end
return out
`

/**
 * seed: create the counter only if it is absent (SET NX).
 * KEYS: [1] counter. ARGV: [1] deadline, [2] value, [3] ttlMs ('' = none).
 * Reply: {'ok', '1' set | '0' already present} | {'expired'}.
 */
export const SEED_LUA = `${PRELUDE}
local set
if ARGV[3] ~= '' then
  set = redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3])
else
  set = redis.call('SET', KEYS[1], ARGV[2], 'NX')
end
if set then return {'ok', '1'} end
return {'ok', '0'}
`

/**
 * get: read a counter and its remaining lifetime.
 * KEYS: [1] counter. ARGV: [1] deadline.
 * Reply: {'ok', value ('' = missing), pttl ('' = no expiry or missing)} | {'expired'}.
 */
export const GET_LUA = `${PRELUDE}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'ok', '', ''} end
return {'ok', raw, pttl_of(KEYS[1])}
`

/**
 * set: overwrite a counter; a live counter keeps its lifetime (KEEPTTL), a new one gets ttlMs.
 * KEYS: [1] counter. ARGV: [1] deadline, [2] value, [3] ttlMs ('' = none).
 * Reply: {'ok'} | {'expired'}.
 */
export const SET_LUA = `${PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
elseif ARGV[3] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return {'ok'}
`

/**
 * delete: remove a counter.
 * KEYS: [1] counter. ARGV: [1] deadline. Reply: {'ok'} | {'expired'}.
 */
export const DELETE_LUA = `${PRELUDE}
redis.call('DEL', KEYS[1])
return {'ok'}
`

/**
 * acquireLock: take the lock if nobody holds it; the holder's own token counts as holding it.
 * KEYS: [1] lock. ARGV: [1] deadline, [2] token, [3] ttlMs.
 * Reply: {'ok', '1' held by token | '0' held by another} | {'expired'}.
 */
export const ACQUIRE_LOCK_LUA = `${PRELUDE}
local holder = redis.call('GET', KEYS[1])
if holder then
  if holder == ARGV[2] then return {'ok', '1'} end
  return {'ok', '0'}
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {'ok', '1'}
`

/**
 * releaseLock: delete the lock only when `token` holds it (never another holder's lock).
 * KEYS: [1] lock. ARGV: [1] deadline, [2] token.
 * Reply: {'ok', '1' released | '0' not held by token} | {'expired'}.
 */
export const RELEASE_LOCK_LUA = `${PRELUDE}
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return {'ok', '1'}
end
return {'ok', '0'}
`

/** A script with its SHA1, the name EVALSHA knows it by. */
export interface Script {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

function script(name: string, lua: string): Script {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') }
}

export const SCRIPTS = {
  apply: script('apply', APPLY_LUA),
  seed: script('seed', SEED_LUA),
  get: script('get', GET_LUA),
  set: script('set', SET_LUA),
  delete: script('delete', DELETE_LUA),
  acquireLock: script('acquireLock', ACQUIRE_LOCK_LUA),
  releaseLock: script('releaseLock', RELEASE_LOCK_LUA),
} as const
