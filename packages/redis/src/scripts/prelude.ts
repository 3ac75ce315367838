/**
 * Lua shared by every script. Each contract method is one script call, so each call is atomic
 * on the server (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
 *
 * Conventions:
 * - ARGV[1] is a deadline in the server's clock (epoch ms, integer string; "0" = none). A call
 *   that reaches the server at or after its deadline changes nothing and answers `{'expired'}`:
 *   the client has already told its caller that the call timed out, so a late delivery (a
 *   paused server, a command resent by the client library after a reconnect) must not count.
 *   `TIME` is read once per script call, however many calls it carries.
 * - Integers travel as decimal strings both ways; values are written with `string.format('%d')`
 *   because Lua 5.1 numbers are doubles and `tostring` prints 2^53 as `9.007199254741e+15`.
 * - Every reply is an array whose first element is a status string; "missing" is `''`, never a
 *   Lua nil (a nil would cut the array short).
 * - All reads and checks of a call happen before its first write, so an error or a refusal
 *   leaves nothing half-applied (Redis does not roll back a script that fails after writing).
 *   The only writes made before or during the checks stand whatever the call answers: expired
 *   holds given back (`holds.ts`) and a loader lock a give-back revokes (`apply.ts`, `batch.ts`).
 */
export const PRELUDE = `
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
local MAX = 9007199254740991
local function pttl_of(key)
  local p = redis.call('PTTL', key)
  if p < 0 then return '' end
  if p == 0 then p = 1 end
  return string.format('%d', p)
end
-- Write a counter's state: one it created gets its lifetime ('' = none); one that existed keeps its own.
local function write_counter(key, s)
  local value = string.format('%d', s.v)
  if not s.created then
    redis.call('SET', key, value, 'KEEPTTL')
  elseif s.ttl ~= '' then
    redis.call('SET', key, value, 'PX', s.ttl)
  else
    redis.call('SET', key, value)
  end
end
-- A give-back met the missing counter: delete its loader lock, so a load that read before it
-- cannot seed. Only a lock that is there is deleted: a call with nothing to revoke writes
-- nothing (and so still answers on a server that refuses writes).
local function revoke_load(counter)
  local lock = counter .. ':lock'
  if redis.call('EXISTS', lock) == 1 then redis.call('DEL', lock) end
end
-- A counter's value as a number, or nil when it does not hold an integer within 2^53.
local function integer_of(raw)
  local v = tonumber(raw)
  if v == nil or v ~= math.floor(v) or v > MAX or v < -MAX then return nil end
  return v
end
`
