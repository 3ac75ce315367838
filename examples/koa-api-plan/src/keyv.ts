import { createKeyvStore } from '@andromeda/keyv'
import KeyvRedis from '@keyv/redis'
import Keyv from 'keyv'

/**
 * A Keyv for the counters: Keyv's in-memory Map by default (one process), or @keyv/redis when
 * a URL is given, where `createKeyvStore` runs the counters as Redis scripts (globally atomic,
 * so several API servers can share one allowance).
 */
export function openKeyvStore(options: { redisUrl?: string; namespace?: string } = {}) {
  const namespace = options.namespace ?? 'api-plan'
  const keyv = options.redisUrl
    ? new Keyv({ store: new KeyvRedis(options.redisUrl), namespace })
    : new Keyv({ namespace })
  keyv.on('error', () => {}) // failures surface as StoreError on the calls (503), not as a crash
  const store = createKeyvStore({ keyv })
  return {
    keyv,
    store,
    async close() {
      await store.close?.()
      await keyv.disconnect()
    },
  }
}
