import type { CounterStore } from '@andromeda/core'
import { runStoreProperties } from '@andromeda/store-test-suite'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe } from 'vitest'
import { createRedisStore } from '../src/index.js'
import { clusterClient, singleClient, type TestClient } from './clients.js'
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

// Real time on a real server: no clock to move, so TTLs are long and time never crosses a
// window during a run. The suite's default runs (200 model sequences) on both topologies.

for (const [name, kind, batch] of [
  ['redis (node-redis RESP3, single node)', 'node-redis-resp3', undefined],
  ['redis (ioredis, single node, batching off)', 'ioredis', false],
] as const) {
  describe.runIf(single)(`${name}, properties`, () => {
    const prefix = randomPrefix('props')
    let client: TestClient
    beforeAll(async () => {
      client = await singleClient(kind, SHARED_REDIS.port)
    })
    afterAll(async () => {
      const admin = new Redis(SHARED_REDIS.port)
      await deleteKeys(admin, prefix)
      admin.disconnect()
      await client?.quit()
    })
    runStoreProperties({
      name,
      createStore: () => createRedisStore({ client: client.client, prefix, batch }),
      destroyStore: async (store: CounterStore) => store.close?.(),
    })
  })
}

// On a Cluster, consumeAll across slots is the engine's saga: its give-back can be refused at
// the floor when a concurrent refund took the unit first (see the README, Limits), which the
// suite's ledger accounts for.
describe.runIf(cluster)('redis (ioredis Cluster, 3 primaries, properties)', () => {
  let own: OwnCluster
  let client: TestClient
  beforeAll(async () => {
    own = await startCluster()
    client = await clusterClient('ioredis-cluster', own.nodes)
  })
  afterAll(async () => {
    await client?.quit()
    await own?.stop()
  })
  runStoreProperties({
    name: 'redis (ioredis Cluster)',
    createStore: () => createRedisStore({ client: client.client, prefix: randomPrefix('props') }),
    destroyStore: async (store: CounterStore) => store.close?.(),
  })
})
