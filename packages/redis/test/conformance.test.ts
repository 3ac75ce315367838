import type { CounterStore } from '@andromeda/core'
import { runStoreConformance } from '@andromeda/store-test-suite'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe } from 'vitest'
import { createRedisStore } from '../src/index.js'
import { type ClusterKind, type SingleKind, type TestClient, clusterClient, singleClient } from './clients.js'
import { type OwnCluster, SHARED_REDIS, canConnect, deleteKeys, hasRedisServerBinary, randomPrefix, requireService, startCluster } from './helpers.js'

const single = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
const cluster = requireService(await hasRedisServerBinary(), 'redis-server and redis-cli on PATH (for a local Cluster)')

const singleKinds: [string, SingleKind][] = [
  ['redis (ioredis, single node)', 'ioredis'],
  ['redis (node-redis, single node)', 'node-redis'],
  ['redis (node-redis 6, single node)', 'node-redis-6'],
]

for (const [name, kind] of singleKinds) {
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
      createStore: () => createRedisStore({ client: client.client, prefix }),
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
