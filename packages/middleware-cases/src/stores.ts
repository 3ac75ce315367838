import type { CounterStore } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { createRedisStore, type RedisCounterStore } from '@andromeda/redis'
import { deletePrefix, randomPrefix, redisAnswers, requireService, SHARED_REDIS } from '@andromeda/test-utils'
import { Redis } from 'ioredis'

/** Where the quotas of one run of the table count. */
export interface StoreProvider {
  /** Shown in test names. */
  name: string
  /** False when the backend is missing (the run is skipped, with the reason printed). */
  available: boolean
  /** A store for one quota of one case, sharing no counter with any other store it made. */
  create(): CounterStore
  /** After the run: close what `create` made and delete every key it wrote. */
  cleanup(): Promise<void>
}

/** A fresh memory store per quota. */
export function memoryStores(): StoreProvider {
  return { name: 'memory', available: true, create: () => createMemoryStore(), cleanup: async () => {} }
}

/**
 * Stores on the shared Redis (127.0.0.1:6379), each under its own prefix inside one random prefix
 * per run that is deleted afterwards. Skipped with a printed reason when Redis is absent, except under CI=true.
 */
export async function redisStores(): Promise<StoreProvider> {
  const available = requireService(
    await redisAnswers(SHARED_REDIS.port, SHARED_REDIS.host),
    `Redis on ${SHARED_REDIS.host}:${SHARED_REDIS.port}`,
  )
  const prefix = randomPrefix('http')
  let client: Redis | undefined
  const stores: RedisCounterStore[] = []
  return {
    name: 'redis',
    available,
    create() {
      client ??= new Redis({ ...SHARED_REDIS, maxRetriesPerRequest: 1 })
      // A prefix of its own per store, so cases never see each other's counters.
      const store = createRedisStore({ client, prefix: `${prefix}${stores.length}:` })
      stores.push(store)
      return store
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((store) => store.close()))
      if (!client) return
      await deletePrefix(client, prefix)
      client.disconnect()
    },
  }
}
