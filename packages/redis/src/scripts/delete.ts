import { PRELUDE } from './prelude.js'

/**
 * delete: remove a counter or an idempotency record.
 * KEYS: [1] the key. ARGV: [1] deadline. Reply: {'ok'} | {'expired'}.
 */
export const DELETE_LUA = `${PRELUDE}
redis.call('DEL', KEYS[1])
return {'ok'}
`
