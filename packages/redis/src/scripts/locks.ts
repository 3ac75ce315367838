import { PRELUDE } from './prelude.js'

/**
 * acquireLock: take the loader lock if nobody holds it; the holder's own token counts as holding it.
 * KEYS: [1] lock. ARGV: [1] deadline, [2] token, [3] ttlMs.
 * Reply: {'ok', '1' held by token | '0' held by another} | {'expired'}.
 */
export const ACQUIRE_LOCK_LUA = `${PRELUDE}
local lock = KEYS[1]
local token = ARGV[2]
local ttl = ARGV[3]
local holder = redis.call('GET', lock)
if holder then
  if holder == token then return {'ok', '1'} end
  return {'ok', '0'}
end
redis.call('SET', lock, token, 'PX', ttl)
return {'ok', '1'}
`

/**
 * releaseLock: delete the lock only when `token` holds it (never another holder's lock).
 * KEYS: [1] lock. ARGV: [1] deadline, [2] token.
 * Reply: {'ok', '1' released | '0' not held by token} | {'expired'}.
 */
export const RELEASE_LOCK_LUA = `${PRELUDE}
local lock = KEYS[1]
local token = ARGV[2]
if redis.call('GET', lock) == token then
  redis.call('DEL', lock)
  return {'ok', '1'}
end
return {'ok', '0'}
`
