import { PRELUDE } from './prelude.js'

/**
 * seed: create the counter only if it is absent (SET NX), for a load from the system of record.
 * KEYS: [1] counter. ARGV: [1] deadline, [2] value, [3] ttlMs ('' = none).
 * Reply: {'ok', '1' set | '0' already present} | {'expired'}.
 */
export const SEED_LUA = `${PRELUDE}
local counter = KEYS[1]
local value = ARGV[2]
local ttl = ARGV[3]
local set
if ttl ~= '' then
  set = redis.call('SET', counter, value, 'NX', 'PX', ttl)
else
  set = redis.call('SET', counter, value, 'NX')
end
if set then return {'ok', '1'} end
return {'ok', '0'}
`
