import { StoreError } from '@andromeda/core'
import { adminCommand, adminInfo, type LagProxy, startLagProxy, waitFor } from '@andromeda/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore, type RedisCounterStore } from '../src/index.js'
import { ReplicasNotReachedError } from '../src/replicas.js'
import { type SingleKind, singleClient, type TestClient } from './clients.js'
import { hasRedisServerBinary, type OwnRedis, randomPrefix, requireService, startRedis } from './helpers.js'

// A primary and a replica of this file's own, the replication stream through a proxy that can
// delay it: the `replicas` option against a replica that keeps up and one that lags.
const available = requireService(await hasRedisServerBinary(), 'redis-server on PATH (for a primary and a replica)')
const kinds: SingleKind[] = ['ioredis', 'node-redis', 'node-redis-6']
const key = (id: string) => `{replicas:${id}}:usage`

describe.runIf(available)('the replicas option (WAIT behind each script call)', () => {
  let primary: OwnRedis
  let replica: OwnRedis
  let proxy: LagProxy

  beforeAll(async () => {
    primary = await startRedis()
    proxy = await startLagProxy(primary.port)
    replica = await startRedis(['--replicaof', '127.0.0.1', String(proxy.port)])
    await waitFor(
      async () => (await adminInfo(replica.port, 'replication')).get('master_link_status') === 'up',
      'the replica to sync',
    )
  })
  afterAll(async () => {
    await replica?.destroy()
    await proxy?.close()
    await primary?.destroy()
  })

  it('refuses a bad replicas option, naming the field, before anything is sent', async () => {
    const client = await singleClient('ioredis', primary.port)
    try {
      const make = (replicas: unknown) => () =>
        createRedisStore({ client: client.client, commandTimeoutMs: 1000, replicas: replicas as never })
      expect(make({ count: 0, timeoutMs: 100 })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', argument: 'replicas.count' }),
      )
      expect(make({ count: 1.5, timeoutMs: 100 })).toThrow(expect.objectContaining({ argument: 'replicas.count' }))
      expect(make({ count: 1, timeoutMs: 1000 })).toThrow(expect.objectContaining({ argument: 'replicas.timeoutMs' }))
      expect(make({ count: 1, timeoutMs: 0 })).toThrow(expect.objectContaining({ argument: 'replicas.timeoutMs' }))
      expect(make({ count: 1, timeoutMs: 100, wait: true })).toThrow(
        expect.objectContaining({ argument: 'replicas.wait' }),
      )
      expect(make('yes')).toThrow(expect.objectContaining({ argument: 'replicas' }))
      expect(make(false)).not.toThrow()
    } finally {
      await client.quit()
    }
  })

  describe.each(kinds)('%s', (kind) => {
    let client: TestClient
    let store: RedisCounterStore
    let plain: RedisCounterStore
    let prefix: string
    const onReplica = async (id: string) => adminCommand(replica.port, ['GET', prefix + key(id)])
    /** Each test starts with the replica holding everything the primary has. */
    const caughtUp = () =>
      waitFor(async () => {
        const offset = (await adminInfo(primary.port, 'replication')).get('master_repl_offset')
        return (await adminInfo(replica.port, 'replication')).get('slave_repl_offset') === offset
      }, 'the replica to catch up')

    beforeAll(async () => {
      client = await singleClient(kind, primary.port)
      prefix = randomPrefix('replicas')
      store = createRedisStore({ client: client.client, prefix, replicas: { count: 1, timeoutMs: 150 } })
      plain = createRedisStore({ client: client.client, prefix })
    })
    afterAll(async () => {
      proxy.lagMs = 0
      await store?.close()
      await plain?.close()
      await client?.quit()
    })

    it('a grant is reported once the replica has it; without the option, before', async () => {
      await caughtUp()
      proxy.lagMs = 50
      try {
        expect(await store.apply([{ key: key('a'), delta: 1, max: 10, ifMissing: 'create' }])).toMatchObject({
          ok: true,
          values: [1],
        })
        expect(await onReplica('a')).toBe('1')
        expect(await plain.apply([{ key: key('b'), delta: 1, max: 10, ifMissing: 'create' }])).toMatchObject({
          ok: true,
          values: [1],
        })
        // The stream is 50 ms behind: the primary answered before the replica had it.
        expect(await onReplica('b')).toBeNull()
      } finally {
        proxy.lagMs = 0
      }
    })

    it('a grant the replica does not acknowledge in time fails, not retryable, and stays counted on the primary', async () => {
      await caughtUp()
      proxy.lagMs = 400
      try {
        const error = await store
          .apply([{ key: key('c'), delta: 2, max: 10, ifMissing: 'create' }])
          .catch((e: unknown) => e)
        expect(StoreError.isInstance(error)).toBe(true)
        expect(error).toMatchObject({ retryable: false })
        expect((error as StoreError).message).toMatch(/stays counted unless a failover loses it/)
        const cause = (error as StoreError).cause
        expect(cause).toBeInstanceOf(ReplicasNotReachedError)
        expect(ReplicasNotReachedError.isInstance(cause)).toBe(true)
        expect(cause).toMatchObject({ acknowledged: 0, required: 1, timeoutMs: 150 })
        expect(await adminCommand(primary.port, ['GET', prefix + key('c')])).toBe('2')
      } finally {
        proxy.lagMs = 0
      }
    })

    it('with an idempotency key it is retryable, and the retry replays it once the replica caught up', async () => {
      await caughtUp()
      proxy.lagMs = 400
      const op = { key: key('d'), delta: 1, max: 10, ifMissing: 'create' } as const
      const options = { idempotencyKey: `${key('d')}:idem:k1`, idempotencyTtlMs: 60_000 }
      try {
        await expect(store.apply([op], options)).rejects.toMatchObject({ code: 'ERR_STORE', retryable: true })
      } finally {
        proxy.lagMs = 0
      }
      await waitFor(async () => (await onReplica('d')) === '1', 'the replica to catch up')
      expect(await store.apply([op], options)).toMatchObject({ ok: true, values: [1], replayed: true })
      expect(await onReplica('d')).toBe('1')
    })

    it('a retry that replays an unconfirmed change is reported only once the replica has the change', async () => {
      await caughtUp()
      proxy.lagMs = 400
      const op = { key: key('replayed'), delta: 1, max: 10, ifMissing: 'create' } as const
      const options = { idempotencyKey: `${key('replayed')}:idem:k1`, idempotencyTtlMs: 60_000 }
      try {
        await expect(store.apply([op], options)).rejects.toMatchObject({ code: 'ERR_STORE', retryable: true })
        // Still behind: the replay reports a change the replica does not have, so it fails too.
        const retry = await store.apply([op], options).catch((e: unknown) => e)
        expect(StoreError.isInstance(retry)).toBe(true)
        expect((retry as StoreError).cause).toBeInstanceOf(ReplicasNotReachedError)
      } finally {
        proxy.lagMs = 0
      }
      await caughtUp()
      expect(await store.apply([op], options)).toMatchObject({ ok: true, values: [1], replayed: true })
      expect(await onReplica('replayed')).toBe('1')
    })

    it('refusals and reads are reported at once while the replica lags; grants of the same tick fail', async () => {
      await caughtUp()
      await store.apply([{ key: key('e'), delta: 5, max: 5, ifMissing: 'create' }])
      proxy.lagMs = 400
      try {
        const order: string[] = []
        const settled = <T>(name: string, call: Promise<T>) =>
          call.finally(() => {
            order.push(name)
          })
        const [granted, refused, read] = await Promise.allSettled([
          settled('granted', store.apply([{ key: key('f'), delta: 1, max: 5, ifMissing: 'create' }])),
          settled('refused', store.apply([{ key: key('e'), delta: 1, max: 5, ifMissing: 'create' }])),
          settled('read', store.get(key('e'))),
        ])
        // One script call carried all three, the grant first; only the grant waited for the
        // WAIT behind it.
        expect(order).toEqual(['refused', 'read', 'granted'])
        expect(refused).toMatchObject({ status: 'fulfilled', value: { ok: false, reason: 'limit', values: [5] } })
        expect(read).toMatchObject({ status: 'fulfilled', value: { value: 5 } })
        expect(granted).toMatchObject({ status: 'rejected', reason: { code: 'ERR_STORE', retryable: false } })
      } finally {
        proxy.lagMs = 0
      }
    })
  })
})

describe.runIf(available).each(kinds)('a primary refusing writes with NOREPLICAS (%s)', (kind) => {
  let server: OwnRedis
  let client: TestClient
  beforeAll(async () => {
    server = await startRedis(['--min-replicas-to-write', '1'])
    client = await singleClient(kind, server.port)
  })
  afterAll(async () => {
    await client?.quit()
    await server?.destroy()
  })

  it('fails the call with a retryable StoreError and writes nothing', async () => {
    const prefix = randomPrefix('noreplicas')
    const store = createRedisStore({ client: client.client, prefix })
    try {
      const error = await store
        .apply([{ key: key('n'), delta: 1, max: 10, ifMissing: 'create' }])
        .catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'ERR_STORE', retryable: true })
      expect(String((error as StoreError).cause)).toMatch(/NOREPLICAS/)
      expect(await adminCommand(server.port, ['EXISTS', prefix + key('n')])).toBe(0)
    } finally {
      await store.close()
    }
  })
})

describe('ReplicasNotReachedError.isInstance', () => {
  it('recognises the error from any copy of the package (by its marker), and nothing else', () => {
    const error = new ReplicasNotReachedError(0, 1, 150)
    expect(ReplicasNotReachedError.isInstance(error)).toBe(true)
    // An error built by another installed copy: another class, the same Symbol.for marker.
    const fromOtherCopy = Object.defineProperty(new Error('x'), Symbol.for('@andromeda/redis.replicas-not-reached'), {
      value: true,
    })
    expect(ReplicasNotReachedError.isInstance(fromOtherCopy)).toBe(true)
    const { isInstance } = ReplicasNotReachedError // detached, as a callback
    expect([new Error('x'), { acknowledged: 0, required: 1 }, null, undefined, 'x'].some(isInstance)).toBe(false)
  })
})
