import { randomBytes } from 'node:crypto'
import { createQuota } from '@andromeda/core'
import { createRedisStore, type RedisCounterStore } from '@andromeda/redis'
import { hasRedisServerBinary, type ReplicatedCluster, startReplicatedCluster } from '@andromeda/test-utils'
import { Cluster } from 'ioredis'
import { createCluster } from 'redis'
import { type Contender, compare, type ScenarioResult } from './harness.js'

/**
 * The cost of the `replicas` option (a WAIT for the replicas behind each script call): consumes
 * per second on a local Cluster of 3 primaries + 3 replicas (redis-servers of the bench's own,
 * on loopback, replication as fast as loopback makes it), without the option and with it.
 */

const HUGE = 1_000_000_000_000
export const REPLICAS = { count: 1, timeoutMs: 100 }

type ClusterClient = { kind: 'ioredis' | 'node-redis'; client: unknown; close(): void }

async function clients(cluster: ReplicatedCluster): Promise<ClusterClient[]> {
  const io = new Cluster(cluster.seeds)
  io.on('error', () => {})
  await new Promise((resolve) => io.once('ready', resolve))
  const node = createCluster({ rootNodes: cluster.seeds.map((socket) => ({ socket })) })
  node.on('error', () => {})
  await node.connect()
  return [
    { kind: 'ioredis', client: io, close: () => io.disconnect() },
    { kind: 'node-redis', client: node, close: () => node.destroy() },
  ]
}

function contender(name: string, client: unknown, keys: number, replicas: boolean): Contender {
  let store: RedisCounterStore | undefined
  return {
    name,
    async setup() {
      const prefix = `bench-${randomBytes(4).toString('hex')}:`
      store = createRedisStore({ client: client as never, prefix, ...(replicas ? { replicas: REPLICAS } : {}) })
      const quota = createQuota({ name: 'replicas', store, limit: HUGE, ttlMs: 3_600_000 })
      await quota.consume('k0') // loads the script on every node it reaches, calibrates the clock
      return (i) => quota.consume(`k${i % keys}`)
    },
    // The keys go with the cluster's servers at the end; the store lets go of the client.
    teardown: async () => store?.close(),
  }
}

/** Returns nothing when redis-server is not on PATH (the section is skipped, with a message). */
export async function benchReplicas(options: {
  rounds: number
  total: number
  quick: boolean
}): Promise<ScenarioResult[]> {
  if (!(await hasRedisServerBinary())) {
    console.error('replicas: skipped (redis-server and redis-cli are not on PATH)')
    return []
  }
  const cluster = await startReplicatedCluster({ lagMs: false })
  const results: ScenarioResult[] = []
  let connected: ClusterClient[] = []
  try {
    connected = await clients(cluster)
    for (const concurrency of options.quick ? [1, 50] : [1, 50, 200]) {
      const scenario = `Cluster 3 primaries + 3 replicas, 10k keys, concurrency ${concurrency}: replicas ${JSON.stringify(REPLICAS)} vs off`
      console.error(`  ${scenario}`)
      const total = concurrency === 1 ? Math.ceil(options.total / 4) : options.total
      const list = connected.flatMap(({ kind, client }) => [
        contender(`andromeda (${kind} cluster), replicas off`, client, 10_000, false),
        contender(`andromeda (${kind} cluster), replicas on`, client, 10_000, true),
      ])
      results.push(await compare(scenario, list, { rounds: options.rounds, total, concurrency, latency: true }))
    }
  } finally {
    for (const c of connected) c.close()
    await cluster.stop()
  }
  return results
}
