import { HOLDS } from './holds.js'
import { PRELUDE } from './prelude.js'

/**
 * batch: independent calls on one counter each (a consume, a refund, a reserve, a commit or
 * release of a hold, a read), coalesced into one script call. Each call is checked and applied
 * on its own, in order, as if it had been sent alone: a refused call changes nothing and does
 * not affect the others, and a call that fails (a key that does not hold an integer) answers
 * an error of its own. Calls on the same counter see each other in order; the counter is read
 * once and written once.
 *
 * KEYS, per call in order: its counter; then its idempotency record, when its shape has 'r';
 *   then the record to delete, when its shape has 'c'.
 * ARGV: [1] deadline (see the prelude), [2] number of calls, then per call six slots, and two
 *   more when its shape has 'h' or 's':
 *   shape   'g' (read) or 'a' (apply), followed by any of 'r' (a record), 'c' (a record to
 *           delete), 'h' (hold the units), 's' (settle a hold),
 *   delta   the change (apply),
 *   bound   the max when delta > 0, the min when delta < 0 ('' = none),
 *   ttlMs   the lifetime of a counter this call creates ('' = none),
 *   missing 'c' create a missing counter, 'r' report it,
 *   recordTtlMs  the lifetime of the call's idempotency record ('r' only),
 *   then for 'h': hold id, holdMs; for 's': hold id, units to keep.
 * Reply: {'expired'} or {'ok', then three per call}:
 *   'o', value, pttl        granted (a read: value '' when missing); pttl '' = no expiry
 *   'l'|'f'|'m', value, pttl  refused: over the bound, under it, or a missing counter to report
 *   'x', value, pttl        refused: the hold to settle is gone (expired, its units back)
 *   'p', value, pttl        the hold was settled before: nothing changed
 *   'r', 'value,pttl', ms   an idempotency record matched: its result and its age
 *   'e', message, ''        this call failed; nothing of it was applied
 * A record holds '<server time when written (ms)>|value,pttl', as the apply script writes it.
 * Expired holds of a counter are given back before one of its calls is refused for the bound,
 * and before a read (see `holds.ts`). A call that gives units back (delta < 0, or 's') and
 * meets its counter missing (after the calls before it) deletes the counter's loader lock
 * `<counter>:lock`, derived from its key like the holds' keys, whatever it answers but a replay
 * or an error: a load in progress may have read usage that still counts those units, and its
 * seed with its token is then refused (see `seed.ts`). A call that creates its counter first
 * deletes the holds an earlier counter of the key left (one evicted or deleted without them),
 * so neither it nor the calls after it settle or give back a hold the new counter never
 * counted (see `holds.ts`).
 */
export const BATCH_LUA = `${PRELUDE}${HOLDS}
local calls = tonumber(ARGV[2])
local out = {'ok'}
local k = 0
local arg = 3

local function emit(code, a, b)
  out[#out + 1] = code
  out[#out + 1] = a
  out[#out + 1] = b
end

-- Each counter's running state across the calls, read once and written once at the end (a
-- hot counter costs one GET and one SET per script call, not per call).
local state = {}
local touched = {}
local function counter(key)
  local s = state[key]
  if s == nil then
    local raw = redis.pcall('GET', key)
    if type(raw) == 'table' then
      s = { err = tostring(raw.err) }
    elseif not raw then
      s = { exists = false, v = 0 }
    else
      local v = integer_of(raw)
      if v == nil then
        s = { err = 'counter ' .. key .. ' does not hold an integer within 2^53' }
      else
        s = { exists = true, v = v }
      end
    end
    state[key] = s
  end
  return s
end
local function touch(key, s)
  if not s.dirty then
    s.dirty = true
    touched[#touched + 1] = key
  end
end
-- Remaining lifetime as reported ('' = none); a counter created here lives exactly its ttl
-- (time stands still for keys while a script runs).
local function lifetime(key, s)
  if s.pttl == nil then
    if s.created then s.pttl = s.ttl else s.pttl = pttl_of(key) end
  end
  return s.pttl
end
-- Give back the counter's expired holds (once per script call).
local function reclaim(key, s)
  s.reclaimed = true
  local units = take_expired_holds(key)
  if units > 0 and s.exists then
    s.v = math.max(s.v - units, 0)
    touch(key, s)
  end
end
local function current(key, s)
  if s.exists then return string.format('%d', s.v), lifetime(key, s) end
  return '', ''
end

for c = 1, calls do
  local shape = ARGV[arg]
  local delta = tonumber(ARGV[arg + 1])
  local bound = ARGV[arg + 2]
  local ttl = ARGV[arg + 3]
  local if_missing = ARGV[arg + 4]
  local record_ttl = ARGV[arg + 5]
  local hold_id = nil
  local hold_arg = nil
  arg = arg + 6
  local holding = string.find(shape, 'h', 2, true) ~= nil
  local settling = string.find(shape, 's', 2, true) ~= nil
  if holding or settling then
    hold_id = ARGV[arg]
    hold_arg = ARGV[arg + 1]
    arg = arg + 2
  end
  k = k + 1
  local key = KEYS[k]
  local record_key = nil
  local clear_key = nil
  if string.find(shape, 'r', 2, true) then k = k + 1; record_key = KEYS[k] end
  if string.find(shape, 'c', 2, true) then k = k + 1; clear_key = KEYS[k] end

  -- A granted call: delete the record it clears, write its own, answer.
  local function grant(value, pttl)
    if clear_key then redis.call('DEL', clear_key) end
    if record_key then
      redis.call('SET', record_key, string.format('%d', now_ms()) .. '|' .. value .. ',' .. pttl, 'PX', record_ttl)
    end
    emit('o', value, pttl)
  end

  local record = false
  if record_key then record = redis.pcall('GET', record_key) end
  local s = counter(key)
  -- A give-back that meets the missing counter revokes a load of it in progress (see above),
  -- whether it is then refused, reported missing or granted.
  if not record and not s.err and not s.exists and shape ~= 'g' and (settling or delta < 0) then
    revoke_load(key)
  end
  if type(record) == 'table' then
    emit('e', tostring(record.err), '')
  elseif record then
    local written, result = string.match(record, '^(%d+)|(.*)$')
    if written then
      emit('r', result, string.format('%d', math.max(now_ms() - tonumber(written), 0)))
    else
      emit('e', 'the idempotency record ' .. record_key .. ' is not one this store wrote', '')
    end
  elseif s.err then
    emit('e', s.err, '')
  elseif shape == 'g' then
    if s.exists and not s.reclaimed then reclaim(key, s) end
    local value, pttl = current(key, s)
    emit('o', value, pttl)
  elseif not s.exists and if_missing == 'r' then
    emit('m', '', '')
  elseif settling then
    local units, hold_ms = nil, nil
    if s.exists then units, hold_ms = live_hold(key, hold_id) end
    if units then
      local give = units - math.min(tonumber(hold_arg), units)
      if give > 0 then
        s.v = math.max(s.v - give, 0)
        touch(key, s)
      end
      settle_hold(key, hold_id, hold_ms)
      grant(string.format('%d', s.v), lifetime(key, s))
    elseif was_settled(key, hold_id) then
      local value, pttl = current(key, s)
      emit('p', value, pttl)
    else
      if not s.reclaimed then reclaim(key, s) end
      local value, pttl = current(key, s)
      emit('x', value, pttl)
    end
  else
    local nxt = next_value(key, s, delta, bound, reclaim)
    if delta > 0 and over_bound(nxt, bound) then
      local value, pttl = current(key, s)
      emit('l', value, pttl)
    elseif delta < 0 and bound ~= '' and nxt < tonumber(bound) then
      local value, pttl = current(key, s)
      emit('f', value, pttl)
    else
      if delta ~= 0 then
        if not s.exists then
          s.exists = true
          s.created = true
          s.ttl = ttl
          drop_holds(key)
        end
        s.v = nxt
        touch(key, s)
      end
      local value, pttl = current(key, s)
      if s.exists then value = string.format('%d', s.v) else value = '0' end
      if holding and delta > 0 then add_hold(key, hold_id, delta, hold_arg, pttl) end
      grant(value, pttl)
    end
  end
end

for i = 1, #touched do write_counter(touched[i], state[touched[i]]) end
return out
`
