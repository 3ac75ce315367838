import type { CounterStore } from '@andromeda/core'
import { runStoreConformance } from '@andromeda/store-test-suite'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe } from 'vitest'
import { createRedisStore, type RedisStoreOptions } from '../src/index.js'
import { type ClusterKind, clusterClient, type SingleKind, singleClient, type TestClient } from './clients.js'
import {
  canConnect,
  deleteKeys,
  hasRedisServerBinary,
  type OwnCluster,
  randomPrefix,
  requireService,
  SHARED_REDIS,
  startCluster,
} from './helpers.js'

const single = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
const cluster = requireService(await hasRedisServerBinary(), 'redis-server and redis-cli on PATH (for a local Cluster)')

// Batching (the default) coalesces one tick's calls into one script call; `batch: false` sends
// each on its own. Both must keep the contract.
const singleKinds: [string, SingleKind, RedisStoreOptions['batch']][] = [
  ['redis (ioredis, single node)', 'ioredis', undefined],
  ['redis (node-redis, single node)', 'node-redis', undefined],
  ['redis (node-redis 6, single node)', 'node-redis-6', undefined],
  ['redis (ioredis, single node, batching off)', 'ioredis', false],
  ['redis (node-redis, single node, batching off)', 'node-redis', false],
]

for (const [name, kind, batch] of singleKinds) {
  describe.runIf(single)(name, () => {
    const prefix = randomPrefix(kind)
    let client: TestClient
    beforeAll(async () => {
      client = await singleClient(kind, SHARED_REDIS.port)
    })
    afterAll(async () => {
      const admin = new Redis(SHARED_REDIS.port)
      await deleteKeys(admin, prefix)
      admin.disconnect()
      await client.quit()
    })
    runStoreConformance({
      name,
      createStore: () => createRedisStore({ client: client.client, prefix, batch }),
      destroyStore: async (store: CounterStore) => store.close?.(),
    })
  })
}

const clusterKinds: [string, ClusterKind][] = [
  ['redis (ioredis Cluster, 3 primaries)', 'ioredis-cluster'],
  ['redis (node-redis Cluster, 3 primaries)', 'node-redis-cluster'],
  ['redis (node-redis 6 Cluster, 3 primaries)', 'node-redis-6-cluster'],
]

describe.runIf(cluster)('on a local 3-primary Redis Cluster', () => {
  let own: OwnCluster
  beforeAll(async () => {
    own = await startCluster()
  })
  afterAll(async () => {
    await own?.stop()
  })
  for (const [name, kind] of clusterKinds) {
    describe(name, () => {
      let client: TestClient
      beforeAll(async () => {
        client = await clusterClient(kind, own.nodes)
      })
      afterAll(async () => {
        await client?.quit()
      })
      runStoreConformance({
        name,
        createStore: () => createRedisStore({ client: client.client, prefix: randomPrefix(kind) }),
        destroyStore: async (store: CounterStore) => store.close?.(),
      })
    })
  }
})
