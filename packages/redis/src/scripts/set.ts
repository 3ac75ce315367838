import { HOLDS } from './holds.js'
import { PRELUDE } from './prelude.js'

/**
 * set: overwrite a counter; a live counter keeps its lifetime (KEEPTTL) and its holds, a new
 * one gets ttlMs and starts without holds: those left by an earlier counter of the key (one
 * evicted or deleted without them) are deleted first, as every script that creates a counter
 * does (see `holds.ts`).
 * KEYS: [1] counter. ARGV: [1] deadline, [2] value, [3] ttlMs ('' = none).
 * Reply: {'ok'} | {'expired'}.
 */
export const SET_LUA = `${PRELUDE}${HOLDS}
local counter = KEYS[1]
local value = ARGV[2]
local ttl = ARGV[3]
if redis.call('EXISTS', counter) == 1 then
  redis.call('SET', counter, value, 'KEEPTTL')
else
  drop_holds(counter)
  if ttl ~= '' then
    redis.call('SET', counter, value, 'PX', ttl)
  else
    redis.call('SET', counter, value)
  end
end
return {'ok'}
`
