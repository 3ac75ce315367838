import type { CounterStore } from '@andromeda/core'
import { runStoreConformance } from '@andromeda/store-test-suite'
import KeyvValkey from '@keyv/valkey'
import Keyv from 'keyv'
import { afterAll, describe, expect, it } from 'vitest'
import { createKeyvStore } from '../src/index.js'
import { REDIS_URL, randomNamespace, redisAnswers, requireService } from './helpers.js'

const available = requireService(await redisAnswers(), 'Redis on 127.0.0.1:6379')

describe.runIf(available)('keyv on @keyv/valkey', () => {
  const namespace = randomNamespace('valkey')
  const adapter = new KeyvValkey(REDIS_URL)
  const keyv = new Keyv({ store: adapter, namespace })

  afterAll(async () => {
    const keys = await adapter.redis.keys(`${namespace}:*`)
    if (keys.length > 0) await adapter.redis.unlink(keys)
    await adapter.disconnect()
  })

  it('is globally atomic and keeps counters as raw integers under the namespace', async () => {
    const store = createKeyvStore({ keyv })
    expect(store.capabilities).toMatchObject({ shared: true, atomic: 'global' })
    await store.apply([{ key: '{q:a}:usage', delta: 7, max: 10, ifMissing: 'create' }])
    expect(await adapter.redis.get(`${namespace}:{q:a}:usage`)).toBe('7')
  })

  runStoreConformance({
    name: 'keyv (@keyv/valkey)',
    createStore: () => createKeyvStore({ keyv }),
    destroyStore: async (store: CounterStore) => store.close?.(),
  })
})
