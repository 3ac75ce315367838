import { HOLDS } from './holds.js'
import { PRELUDE } from './prelude.js'

/**
 * seed: create the counter only if it is absent (SET NX), for a load from the system of record.
 * A counter it creates starts without holds: those left by an earlier counter of the key (one
 * evicted or deleted without them) are deleted in the same call, as every script that creates
 * a counter does (see `holds.ts`); the loaded usage never counted them.
 * With a lock token, only while the counter's loader lock `<counter>:lock` holds exactly that
 * token: a give-back that met the missing counter deleted the lock (see `apply.ts`, `batch.ts`),
 * and the usage this load read may still count the units it gave back. The lock's name is
 * derived from the counter's key, as `holds.ts` derives its keys: it shares the counter's hash
 * tag, hence its slot.
 * KEYS: [1] counter. ARGV: [1] deadline, [2] value, [3] ttlMs ('' = none), [4] the loader's
 *   lock token ('' = none: seed whoever holds the lock).
 * Reply: {'ok', '1' set | '0' already present, or the lock is not the token's} | {'expired'}.
 */
export const SEED_LUA = `${PRELUDE}${HOLDS}
local counter = KEYS[1]
local value = ARGV[2]
local ttl = ARGV[3]
local token = ARGV[4]
if token ~= '' and redis.call('GET', counter .. ':lock') ~= token then return {'ok', '0'} end
local set
if ttl ~= '' then
  set = redis.call('SET', counter, value, 'NX', 'PX', ttl)
else
  set = redis.call('SET', counter, value, 'NX')
end
if set then
  drop_holds(counter)
  return {'ok', '1'}
end
return {'ok', '0'}
`
