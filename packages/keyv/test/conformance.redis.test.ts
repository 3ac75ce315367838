import type { CounterStore } from '@andromeda/core'
import { runStoreConformance } from '@andromeda/store-test-suite'
import KeyvRedis from '@keyv/redis'
import Keyv from 'keyv'
import { afterAll, describe, expect, it } from 'vitest'
import { createKeyvStore } from '../src/index.js'
import { deleteNamespace, REDIS_URL, randomNamespace, redisAnswers, requireService } from './helpers.js'

const available = requireService(await redisAnswers(), 'Redis on 127.0.0.1:6379')

describe.runIf(available)('keyv on @keyv/redis', () => {
  const namespace = randomNamespace('redis')
  const adapter = new KeyvRedis(REDIS_URL)
  const keyv = new Keyv({ store: adapter, namespace })

  afterAll(async () => {
    await deleteNamespace(adapter, namespace)
    await adapter.disconnect()
  })

  it('is globally atomic and keeps counters as raw integers under the namespace, not in Keyv JSON', async () => {
    const store = createKeyvStore({ keyv })
    expect(store.capabilities).toMatchObject({ shared: true, atomic: 'global' })
    await store.apply([{ key: '{q:a}:usage', delta: 7, max: 10, ifMissing: 'create' }])
    const client = await adapter.getClient()
    expect(await client.get(`${namespace}::{q:a}:usage`)).toBe('7')
    await store.close?.()
  })

  runStoreConformance({
    name: 'keyv (@keyv/redis)',
    createStore: () => createKeyvStore({ keyv }),
    destroyStore: async (store: CounterStore) => store.close?.(),
  })
})
