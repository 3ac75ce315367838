import { counterKey, createQuota, StoreError } from '@andromeda/core'
import {
  adminCommand,
  type ReplicatedCluster,
  type ReplicatedNode,
  type SentinelGroup,
  startReplicatedCluster,
  startSentinelGroup,
} from '@andromeda/test-utils'
import { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore } from '../src/index.js'
import { buildConsumer, FailoverLoad, type RoundResult, roundsTable } from './failover-load.js'
import { hasRedisServerBinary, randomPrefix, requireService } from './helpers.js'

// Failovers under load, on servers this file starts: a Cluster of 3 primaries + 3 replicas
// and a Sentinel group (1 primary, 1 replica, 3 Sentinels). Replication goes through a proxy
// that delays it by 50 ms, as a network between machines would; on bare loopback a replica is
// never far enough behind for a failover to lose a write.
const available = requireService(
  await hasRedisServerBinary(),
  'redis-server on PATH (for a Cluster with replicas and Sentinel)',
)
const LAG_MS = 50
const REPLICAS = { count: 1, timeoutMs: 500 }
// The stores' bound (shorter than the default 2000 ms, so rounds are short); every failed
// call settles within it, plus a margin for a busy machine.
const COMMAND_TIMEOUT_MS = 1000
const BOUND_MS = COMMAND_TIMEOUT_MS + 1000

function expectRound(round: RoundResult, durable: boolean): void {
  const what = `${round.timing.kind} ${round.timing.from}->${round.timing.to}`
  expect(round.untyped, `${what}: every failure is a StoreError`).toEqual([])
  expect(round.slowestFailureMs, `${what}: every failure within the bound`).toBeLessThan(BOUND_MS)
  expect(round.retryableApplied, `${what}: a call failed as retryable was never applied`).toEqual([])
  if (durable) expect(round.lost, `${what}: units granted but missing from the new primary`).toBe(0)
  // The store works again without a restart of the app, in every process.
  for (const after of round.afterMark) {
    expect(after.failed, `${what}: ${after.client} failures once healthy: ${after.errors.join('; ')}`).toBe(0)
    expect(after.ok, `${what}: ${after.client} successes once healthy`).toBeGreaterThan(0)
  }
  expect(round.granted).toBeGreaterThan(0)
}

function printRounds(title: string, rounds: RoundResult[]): void {
  console.log(roundsTable(title, rounds))
}

describe.runIf(available)(
  `failover under load: Cluster of 3 primaries + 3 replicas, replication ${LAG_MS} ms behind`,
  () => {
    let cluster: ReplicatedCluster
    beforeAll(async () => {
      ;[cluster] = await Promise.all([startReplicatedCluster({ lagMs: LAG_MS }), buildConsumer()])
    })
    afterAll(async () => {
      await cluster?.stop()
    })

    const primaryPorts = async () => (await cluster.topology()).map((p) => p.primary.serverPort)
    const nthPrimary = async (n: number) => {
      const pairs = await cluster.topology()
      return pairs[n % pairs.length]!.primary
    }

    it('a script call whose connection closes after it ran fails, and the ioredis Cluster client never sends it again', async () => {
      const client = new Cluster(cluster.seeds)
      client.on('error', () => {})
      const prefix = randomPrefix('resend')
      const store = createRedisStore({ client, prefix })
      try {
        const quota = createQuota({ name: 'resend', store, limit: 100, retry: false })
        expect((await quota.consume('x')).usage).toBe(1)
        const key = prefix + counterKey('resend', 'x')
        // The primary of the key's slot answers GET; the others answer MOVED.
        let node: ReplicatedNode | undefined
        for (const { primary } of await cluster.topology()) {
          if ((await adminCommand(primary.serverPort, ['GET', key]).catch(() => undefined)) !== undefined)
            node = primary
        }
        if (!node?.proxy) throw new Error('no primary holds the key')
        // The reply is held back; the connection drops while the script has already run.
        node.proxy.replyLagMs = 300
        const pending = quota.consume('x').catch((e: unknown) => e)
        await new Promise((resolve) => setTimeout(resolve, 100))
        node.proxy.dropConnections()
        node.proxy.replyLagMs = 0
        const error = await pending
        expect(StoreError.isInstance(error)).toBe(true)
        // Written, and maybe run: not retryable (it did run: the usage is 2).
        expect((error as StoreError).retryable).toBe(false)
        // ioredis would resend after retryDelayOnFailover (100 ms): give it time to.
        await new Promise((resolve) => setTimeout(resolve, 600))
        expect(await adminCommand(node.serverPort, ['GET', key])).toBe('2')
      } finally {
        await store.close()
        client.disconnect()
      }
    })

    it(`with replicas ${JSON.stringify(REPLICAS)}: 6 failovers under load from 3 processes sell no unit twice`, {
      timeout: 180_000,
    }, async () => {
      const load = await FailoverLoad.start({
        clients: ['ioredis-cluster', 'node-redis-cluster', 'node-redis-6-cluster'],
        seeds: cluster.seeds,
        prefix: randomPrefix('failover'),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        replicas: REPLICAS,
        // Each consume waits for the replica (50 ms behind): more in flight for a comparable rate.
        workers: 24,
      })
      const rounds: RoundResult[] = []
      try {
        for (const [i, kind] of (['kill', 'force', 'kill', 'manual', 'kill', 'force'] as const).entries()) {
          const primary = await nthPrimary(i)
          rounds.push(await load.round(() => cluster.failover(primary, kind), primaryPorts))
        }
      } finally {
        await load.stop()
        printRounds(`Cluster, replicas ${JSON.stringify(REPLICAS)}, replication ${LAG_MS} ms behind`, rounds)
      }
      for (const round of rounds) expectRound(round, true)
    })

    it('without the option: 3 failovers under load; failures typed, bounded, retryable only where nothing was applied (the loss is measured)', {
      timeout: 180_000,
    }, async () => {
      const load = await FailoverLoad.start({
        clients: ['ioredis-cluster', 'node-redis-cluster', 'node-redis-6-cluster'],
        seeds: cluster.seeds,
        prefix: randomPrefix('failover'),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      })
      const rounds: RoundResult[] = []
      try {
        for (const [i, kind] of (['kill', 'force', 'kill'] as const).entries()) {
          const primary = await nthPrimary(i)
          rounds.push(await load.round(() => cluster.failover(primary, kind), primaryPorts))
        }
      } finally {
        await load.stop()
        printRounds(`Cluster, no replicas option, replication ${LAG_MS} ms behind`, rounds)
      }
      for (const round of rounds) expectRound(round, false)
    })
  },
)

describe.runIf(available)(
  `failover under load: Sentinel (1 primary, 1 replica, 3 Sentinels), replication ${LAG_MS} ms behind`,
  () => {
    let group: SentinelGroup
    beforeAll(async () => {
      ;[group] = await Promise.all([startSentinelGroup({ lagMs: LAG_MS }), buildConsumer()])
    })
    afterAll(async () => {
      await group?.stop()
    })
    const primaryPorts = async () => [(await group.primary()).serverPort]

    it(`with replicas ${JSON.stringify(REPLICAS)}: 5 failovers under load from 3 processes sell no unit twice`, {
      timeout: 180_000,
    }, async () => {
      const load = await FailoverLoad.start({
        clients: ['ioredis-sentinel', 'ioredis-sentinel', 'ioredis-sentinel'],
        seeds: group.sentinels,
        sentinelName: group.name,
        prefix: randomPrefix('sentinel'),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        replicas: REPLICAS,
        // Each consume waits for the replica (50 ms behind): more in flight for a comparable rate.
        workers: 24,
      })
      const rounds: RoundResult[] = []
      try {
        for (const kind of ['kill', 'sentinel', 'kill', 'sentinel', 'kill'] as const) {
          rounds.push(await load.round(() => group.failover(kind), primaryPorts))
        }
      } finally {
        await load.stop()
        printRounds(`Sentinel, replicas ${JSON.stringify(REPLICAS)}, replication ${LAG_MS} ms behind`, rounds)
      }
      for (const round of rounds) expectRound(round, true)
    })

    it('without the option: 3 failovers under load; failures typed, bounded, retryable only where nothing was applied (the loss is measured)', {
      timeout: 180_000,
    }, async () => {
      const load = await FailoverLoad.start({
        clients: ['ioredis-sentinel', 'ioredis-sentinel', 'ioredis-sentinel'],
        seeds: group.sentinels,
        sentinelName: group.name,
        prefix: randomPrefix('sentinel'),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      })
      const rounds: RoundResult[] = []
      try {
        for (const kind of ['kill', 'sentinel', 'kill'] as const)
          rounds.push(await load.round(() => group.failover(kind), primaryPorts))
      } finally {
        await load.stop()
        printRounds(`Sentinel, no replicas option, replication ${LAG_MS} ms behind`, rounds)
      }
      for (const round of rounds) expectRound(round, false)
    })
  },
)
