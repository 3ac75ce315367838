import { HOLDS } from './holds.js'
import { PRELUDE } from './prelude.js'

/**
 * delete: remove a counter with its holds (see `holds.ts`), or an idempotency record.
 * KEYS: [1] the key. ARGV: [1] deadline. Reply: {'ok'} | {'expired'}.
 */
export const DELETE_LUA = `${PRELUDE}${HOLDS}
local key = KEYS[1]
redis.call('DEL', key)
drop_holds(key)
return {'ok'}
`
