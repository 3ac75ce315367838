import { randomBytes } from 'node:crypto'
import type { ApplyOptions, CounterOp } from '@andromeda/core'
import { createQuota, type Reservation, StoreError } from '@andromeda/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore, type RedisCounterStore } from '../src/index.js'
import {
  canConnect,
  deleteKeys,
  type OwnRedis,
  randomPrefix,
  requireService,
  SHARED_REDIS,
  startRedis,
} from './helpers.js'

const available = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** An ioredis client that counts the script calls it sends (EVALSHA and EVAL). */
function countingClient(port: number, options: Record<string, unknown> = {}) {
  const client = new Redis({ host: '127.0.0.1', port, ...options })
  client.on('error', () => {})
  const counter = { scripts: 0 }
  const evalsha = client.evalsha.bind(client)
  const evalLua = client.eval.bind(client)
  // Wrapped before the store is created: the store's driver reads these methods then.
  client.evalsha = ((...args: Parameters<typeof evalsha>) => {
    counter.scripts++
    return evalsha(...args)
  }) as typeof client.evalsha
  client.eval = ((...args: Parameters<typeof evalLua>) => {
    counter.scripts++
    return evalLua(...args)
  }) as typeof client.eval
  return { client, counter }
}

type Step = { kind: 'apply'; op: CounterOp; options?: ApplyOptions } | { kind: 'get'; key: string }

/** A seeded mix of consumes (some over the bound), refunds (some below the floor), reports, reads and idempotent calls on three counters. */
function randomSteps(seed: number, count: number): Step[] {
  let state = seed >>> 0 || 1
  const random = () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 2 ** 32
  }
  const keys = ['{b:a}:usage', '{b:b}:usage', '{b:c}:usage']
  return Array.from({ length: count }, (_, i): Step => {
    const key = keys[Math.floor(random() * keys.length)]!
    const roll = random()
    if (roll < 0.15) return { kind: 'get', key }
    if (roll < 0.25) return { kind: 'apply', op: { key, delta: 1, max: 8, ifMissing: 'report' } }
    if (roll < 0.4)
      return { kind: 'apply', op: { key, delta: -(1 + Math.floor(random() * 3)), min: 0, ifMissing: 'report' } }
    if (roll < 0.5) {
      const idempotencyKey = `{b:a}:idem:${Math.floor(random() * 3)}`
      return {
        kind: 'apply',
        op: { key: '{b:a}:usage', delta: 2, max: 8, ifMissing: 'create' },
        options: { idempotencyKey, idempotencyTtlMs: 60_000 },
      }
    }
    return {
      kind: 'apply',
      op: { key, delta: 1 + Math.floor(random() * 3), max: 8, ifMissing: 'create' },
      options: i % 7 === 0 ? {} : undefined,
    }
  })
}

const run = (store: RedisCounterStore, step: Step) =>
  step.kind === 'get' ? store.get(step.key) : store.apply([step.op], step.options)

describe.runIf(available)('batching: calls on one counter issued in one tick', () => {
  const prefix = randomPrefix('batch')
  let admin: Redis
  beforeAll(() => {
    admin = new Redis(SHARED_REDIS.port)
  })
  afterAll(async () => {
    await deleteKeys(admin, prefix)
    admin.disconnect()
  })

  for (const seed of [randomBytes(4).readUInt32LE(0), randomBytes(4).readUInt32LE(0), randomBytes(4).readUInt32LE(0)]) {
    it(`go out as one script call, and each answer and counter is as if each call had been sent alone (seed ${seed})`, async () => {
      const steps = randomSteps(seed, 60)
      const batched = countingClient(SHARED_REDIS.port)
      const alone = countingClient(SHARED_REDIS.port)
      const batchedStore = createRedisStore({ client: batched.client, prefix: `${prefix}on:${seed}:` })
      const aloneStore = createRedisStore({ client: alone.client, prefix: `${prefix}off:${seed}:`, batch: false })
      try {
        // Connected and calibrated first, so the tick's calls are not held for the connection.
        await batchedStore.get('warm-up')
        await aloneStore.get('warm-up')
        const before = batched.counter.scripts
        const together = await Promise.all(steps.map((step) => run(batchedStore, step)))
        expect(batched.counter.scripts - before).toBe(1)

        const oneByOne: unknown[] = []
        for (const step of steps) oneByOne.push(await run(aloneStore, step))
        // Refused calls among them changed nothing: every answer, in order, is the one-by-one answer.
        expect(together.some((r) => r !== undefined && 'ok' in r && !r.ok)).toBe(true)
        expect(together).toEqual(oneByOne)
        for (const key of [
          '{b:a}:usage',
          '{b:b}:usage',
          '{b:c}:usage',
          '{b:a}:idem:0',
          '{b:a}:idem:1',
          '{b:a}:idem:2',
        ]) {
          const [mine, theirs] = await Promise.all([
            admin.get(`${prefix}on:${seed}:${key}`),
            admin.get(`${prefix}off:${seed}:${key}`),
          ])
          // Records hold their write time; compare what they replay.
          expect(mine?.replace(/^\d+\|/, '')).toEqual(theirs?.replace(/^\d+\|/, ''))
        }
      } finally {
        await batchedStore.close()
        await aloneStore.close()
        batched.client.disconnect()
        alone.client.disconnect()
      }
    })
  }

  it('a reserve, a commit and a release are one script call each, and a consume beside a hold is too', async () => {
    const { client, counter } = countingClient(SHARED_REDIS.port)
    const store = createRedisStore({ client, prefix: `${prefix}holds:` })
    const quota = createQuota({ name: 'tokens', store, limit: 10 })
    try {
      await store.get('warm-up')
      const calls = async (step: () => Promise<unknown>) => {
        const before = counter.scripts
        await step()
        return counter.scripts - before
      }
      let hold!: Reservation
      expect(await calls(async () => (hold = await quota.reserve('u', 6)))).toBe(1)
      expect(await calls(() => quota.consume('u', 2))).toBe(1)
      expect(await calls(() => hold.commit(4))).toBe(1)
      let other!: Reservation
      expect(await calls(async () => (other = await quota.reserve('u', 3)))).toBe(1)
      expect(await calls(() => other.release())).toBe(1)
      expect(await quota.get('u')).toMatchObject({ usage: 6 })
    } finally {
      await store.close()
      client.disconnect()
    }
  })

  it('maxOps caps the calls per script call', async () => {
    const { client, counter } = countingClient(SHARED_REDIS.port)
    const store = createRedisStore({ client, prefix: `${prefix}cap:`, batch: { maxOps: 4 } })
    try {
      await store.get('warm-up')
      const before = counter.scripts
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          store.apply([{ key: '{b:cap}:usage', delta: 1, max: 100, ifMissing: 'create' }]),
        ),
      )
      expect(counter.scripts - before).toBe(3)
      expect(results.map((r) => r.ok && r.values[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    } finally {
      await store.close()
      client.disconnect()
    }
  })

  it('a call whose counter does not hold an integer fails alone; the others in its script call are answered', async () => {
    const { client } = countingClient(SHARED_REDIS.port)
    const store = createRedisStore({ client, prefix: `${prefix}bad:` })
    await admin.set(`${prefix}bad:{b:bad}:usage`, 'not a number')
    try {
      await store.get('warm-up')
      const outcomes = await Promise.allSettled([
        store.apply([{ key: '{b:ok}:usage', delta: 1, max: 10, ifMissing: 'create' }]),
        store.apply([{ key: '{b:bad}:usage', delta: 1, max: 10, ifMissing: 'create' }]),
        store.get('{b:bad}:usage'),
        store.apply([{ key: '{b:ok}:usage', delta: 1, max: 10, ifMissing: 'create' }]),
      ])
      expect(outcomes[0]).toEqual({ status: 'fulfilled', value: { ok: true, values: [1], ttlMs: [undefined] } })
      expect(outcomes[3]).toEqual({ status: 'fulfilled', value: { ok: true, values: [2], ttlMs: [undefined] } })
      for (const bad of [outcomes[1], outcomes[2]]) {
        expect(bad?.status).toBe('rejected')
        const error = (bad as PromiseRejectedResult).reason
        expect(StoreError.isInstance(error) && error.message).toMatch(/does not hold an integer/)
      }
      expect(await admin.get(`${prefix}bad:{b:bad}:usage`)).toBe('not a number')
    } finally {
      await store.close()
      client.disconnect()
    }
  })
})

describe.runIf(available)('batching under faults', () => {
  let server: OwnRedis
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.destroy()
  })

  it('a script call broken by a dropped connection fails each of its calls with a StoreError; retried with their idempotency keys, each is counted once', async () => {
    const key = '{b:drop}:usage'
    const calls = 20
    const first = countingClient(server.port, { retryStrategy: () => null })
    const store = createRedisStore({ client: first.client, prefix: 'drop:', commandTimeoutMs: 5000 })
    await store.get('warm-up')
    const applyAll = (target: RedisCounterStore) =>
      Array.from({ length: calls }, (_, i) =>
        target.apply([{ key, delta: 1, max: 1000, ifMissing: 'create' }], {
          idempotencyKey: `{b:drop}:idem:${i}`,
          idempotencyTtlMs: 60_000,
        }),
      )
    // The server holds the script call unread while the connection drops under it.
    server.pause()
    const pending = Promise.allSettled(applyAll(store))
    await sleep(100)
    first.client.disconnect()
    const outcomes = await pending
    server.resume()
    expect(first.counter.scripts).toBeGreaterThanOrEqual(2) // the warm-up and the batch
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected')
      const error = (outcome as PromiseRejectedResult).reason
      expect(StoreError.isInstance(error)).toBe(true)
      // Written before the drop: nobody knows whether it ran, but an idempotent call may be sent again.
      expect((error as StoreError).retryable).toBe(true)
    }
    await store.close()

    const second = countingClient(server.port)
    const retryStore = createRedisStore({ client: second.client, prefix: 'drop:' })
    try {
      const retried = await Promise.all(applyAll(retryStore))
      expect(retried.every((r) => r.ok)).toBe(true)
      // Whether or not the dropped script call ran, every unit is counted exactly once.
      expect(await second.client.get(`drop:${key}`)).toBe(String(calls))
    } finally {
      await retryStore.close()
      second.client.disconnect()
    }
  })

  it('a script call past its deadline fails every call in it, and none is applied when the server runs it late', async () => {
    const key = '{b:late}:usage'
    const { client } = countingClient(server.port)
    const store = createRedisStore({ client, prefix: 'late:', commandTimeoutMs: 300 })
    try {
      await store.get('warm-up')
      server.pause()
      let outcomes: PromiseSettledResult<unknown>[]
      try {
        outcomes = await Promise.allSettled(
          Array.from({ length: 10 }, () => store.apply([{ key, delta: 1, max: 1000, ifMissing: 'create' }])),
        )
      } finally {
        server.resume()
      }
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected')
        const error = (outcome as PromiseRejectedResult).reason
        expect(StoreError.isInstance(error) && error.retryable).toBe(false)
      }
      // The server now runs the late script call: past its deadline, it changes nothing.
      await sleep(200)
      expect(await client.get(`late:${key}`)).toBeNull()
    } finally {
      await store.close()
      client.disconnect()
    }
  })
})
