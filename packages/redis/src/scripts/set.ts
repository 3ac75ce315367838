import { PRELUDE } from './prelude.js'

/**
 * set: overwrite a counter; a live counter keeps its lifetime (KEEPTTL), a new one gets ttlMs.
 * KEYS: [1] counter. ARGV: [1] deadline, [2] value, [3] ttlMs ('' = none).
 * Reply: {'ok'} | {'expired'}.
 */
export const SET_LUA = `${PRELUDE}
local counter = KEYS[1]
local value = ARGV[2]
local ttl = ARGV[3]
if redis.call('EXISTS', counter) == 1 then
  redis.call('SET', counter, value, 'KEEPTTL')
elseif ttl ~= '' then
  redis.call('SET', counter, value, 'PX', ttl)
else
  redis.call('SET', counter, value)
end
return {'ok'}
`
