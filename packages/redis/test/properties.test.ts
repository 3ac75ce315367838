import type { CounterStore } from '@andromeda/core'
import { runStoreProperties } from '@andromeda/store-test-suite'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe } from 'vitest'
import { createRedisStore } from '../src/index.js'
import { type TestClient, singleClient } from './clients.js'
import { SHARED_REDIS, canConnect, deleteKeys, randomPrefix, requireService } from './helpers.js'

const single = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)

// Real time on a real server: fewer runs than the clocked in-memory suites. Single node only:
// on a Cluster, consumeAll across slots is the engine's saga, whose rollback can be refused by
// a concurrent refund (see the package README, Limits), which this property's ledger does not model.
const numRuns = 25

describe.runIf(single)('redis (node-redis, single node, properties)', () => {
  const prefix = randomPrefix('props')
  let client: TestClient
  beforeAll(async () => {
    client = await singleClient('node-redis-resp3', SHARED_REDIS.port)
  })
  afterAll(async () => {
    const admin = new Redis(SHARED_REDIS.port)
    await deleteKeys(admin, prefix)
    admin.disconnect()
    await client?.quit()
  })
  runStoreProperties({
    name: 'redis (node-redis RESP3)',
    numRuns,
    createStore: () => createRedisStore({ client: client.client, prefix }),
    destroyStore: async (store: CounterStore) => store.close?.(),
  })
})
