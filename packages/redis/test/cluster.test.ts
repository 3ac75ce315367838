import { randomBytes } from 'node:crypto'
import { type CounterStore, consumeAll, counterKey, createQuota } from '@andromeda/core'
import calculateSlot from 'cluster-key-slot'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore } from '../src/index.js'
import { type ClusterKind, clusterClient, type TestClient } from './clients.js'
import { hasRedisServerBinary, type OwnCluster, randomPrefix, requireService, startCluster } from './helpers.js'

const available = requireService(
  await hasRedisServerBinary(),
  'redis-server and redis-cli on PATH (for a local Cluster)',
)
const randomId = () => randomBytes(8).toString('hex')

describe.runIf(available)('Redis store on a local 3-primary Cluster', () => {
  let cluster: OwnCluster
  beforeAll(async () => {
    cluster = await startCluster()
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  it('100 concurrent consumes on random ids with ioredis auto-pipelining and key prefixes all succeed', async () => {
    const client = await clusterClient('ioredis-cluster', cluster.nodes, {
      enableAutoPipelining: true,
      keyPrefix: 'ap:',
    })
    const store = createRedisStore({ client: client.client, prefix: randomPrefix('cluster') })
    try {
      const quota = createQuota({ name: 'pipelined', store, limit: 1, ttlMs: 60_000 })
      const ids = Array.from({ length: 100 }, randomId)
      const results = await Promise.all(ids.map((id) => quota.consume(id)))
      expect(results.filter((r) => r.allowed)).toHaveLength(100)
      // Every id counted exactly once, whichever primary holds it.
      const again = await Promise.all(ids.map((id) => quota.consume(id)))
      expect(again.filter((r) => r.allowed)).toHaveLength(0)
      const slots = new Set(ids.map((id) => calculateSlot(counterKey('pipelined', id))))
      expect(slots.size).toBeGreaterThan(50)
    } finally {
      await store.close?.()
      await client.quit()
    }
  })

  describe.each<ClusterKind>(['ioredis-cluster', 'node-redis-cluster'])('%s', (kind) => {
    let client: TestClient
    let store: CounterStore
    beforeAll(async () => {
      client = await clusterClient(kind, cluster.nodes)
      store = createRedisStore({ client: client.client, prefix: randomPrefix(kind) })
    })
    afterAll(async () => {
      await store?.close?.()
      await client?.quit()
    })

    it('canApplyTogether() is true only for keys of one slot', () => {
      const a = counterKey('a', 'x')
      expect(store.capabilities.canApplyTogether([a, `${a}:lock`, `${a}:idem:all:k`])).toBe(true)
      const far = Array.from({ length: 20 }, (_, i) => counterKey('b', `id-${i}`)).find(
        (k) => calculateSlot(k) !== calculateSlot(a),
      )!
      expect(store.capabilities.canApplyTogether([a, far])).toBe(false)
    })

    it('apply() on keys of several slots is refused before anything is sent', async () => {
      const a = counterKey('a', randomId())
      const b = Array.from({ length: 20 }, () => counterKey('b', randomId())).find(
        (k) => calculateSlot(k) !== calculateSlot(a),
      )!
      await expect(
        store.apply([
          { key: a, delta: 1, ifMissing: 'create' },
          { key: b, delta: 1, ifMissing: 'create' },
        ]),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
      expect(await store.get(a)).toBeUndefined()
    })

    it('consumeAll across slots is all-or-nothing (saga)', async () => {
      const vouchers = createQuota({ name: `voucher-${randomId()}`, store, limit: 10 })
      const perUser = createQuota({ name: `user-${randomId()}`, store, limit: 1 })
      const voucherId = randomId()
      let userId = randomId()
      while (calculateSlot(counterKey(perUser.name, userId)) === calculateSlot(counterKey(vouchers.name, voucherId)))
        userId = randomId()
      const items = [
        { quota: vouchers, id: voucherId },
        { quota: perUser, id: userId },
      ]
      expect((await consumeAll(items)).allowed).toBe(true)
      const refused = await consumeAll(items)
      expect(refused).toMatchObject({ allowed: false, refused: { index: 1, reason: 'limit' } })
      expect((await vouchers.get(voucherId)).usage).toBe(1)
      expect((await perUser.get(userId)).usage).toBe(1)
    })

    it('consumeAll on keys of one slot is one atomic script and all-or-nothing', async () => {
      const vouchers = createQuota({ name: `voucher-${randomId()}`, store, limit: 10 })
      const perUser = createQuota({ name: `user-${randomId()}`, store, limit: 1 })
      const voucherId = randomId()
      const slot = calculateSlot(counterKey(vouchers.name, voucherId))
      let userId = randomId()
      for (let i = 0; calculateSlot(counterKey(perUser.name, userId)) !== slot; i++) userId = `u${i}`
      const keys = [counterKey(vouchers.name, voucherId), counterKey(perUser.name, userId)]
      expect(store.capabilities.canApplyTogether(keys)).toBe(true)
      const items = [
        { quota: vouchers, id: voucherId },
        { quota: perUser, id: userId },
      ]
      expect((await consumeAll(items, { idempotencyKey: 'once' })).allowed).toBe(true)
      expect(await consumeAll(items, { idempotencyKey: 'once' })).toMatchObject({ allowed: true, replayed: true })
      expect(await consumeAll(items)).toMatchObject({ allowed: false, refused: { index: 1 } })
      expect((await vouchers.get(voucherId)).usage).toBe(1)
    })

    it('after SCRIPT FLUSH on every primary, consumes on ids across all nodes succeed and count once', async () => {
      const quota = createQuota({ name: `flush-${randomId()}`, store, limit: 5 })
      const ids = Array.from({ length: 30 }, randomId)
      await Promise.all(ids.map((id) => quota.consume(id)))
      for (const node of cluster.nodes) {
        const admin = new Redis(node.port)
        await admin.script('FLUSH')
        admin.disconnect()
      }
      const results = await Promise.all(ids.map((id) => quota.consume(id)))
      expect(results.every((r) => r.allowed && r.usage === 2)).toBe(true)
    })
  })
})
