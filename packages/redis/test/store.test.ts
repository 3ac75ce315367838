import type { CounterStore } from '@andromeda/core'
import { InvalidArgumentError } from '@andromeda/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore } from '../src/index.js'
import { type SingleKind, singleClient, type TestClient } from './clients.js'
import { canConnect, deleteKeys, randomPrefix, requireService, SHARED_REDIS } from './helpers.js'

const available = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
const kinds: SingleKind[] = [
  'ioredis',
  'ioredis-resp2',
  'node-redis',
  'node-redis-resp3',
  'node-redis-6',
  'node-redis-6-resp3',
]
const MAX = Number.MAX_SAFE_INTEGER

describe.runIf(available).each(kinds)('RedisStore on %s', (kind) => {
  let test: TestClient
  let admin: Redis
  let store: CounterStore
  const prefix = randomPrefix(kind)

  beforeAll(async () => {
    test = await singleClient(kind, SHARED_REDIS.port)
    admin = new Redis(SHARED_REDIS.port)
    store = createRedisStore({ client: test.client, prefix })
  })
  afterAll(async () => {
    await store.close?.()
    await deleteKeys(admin, prefix)
    await test.quit()
    admin.disconnect()
  })

  let n = 0
  const key = () => `{q:${kind}-${n++}}:usage`

  it('apply() creates a missing counter and counts up to the limit, then refuses without writing', async () => {
    const k = key()
    expect(await store.apply([{ key: k, delta: 3, max: 5, ifMissing: 'create' }])).toEqual({
      ok: true,
      values: [3],
      ttlMs: [undefined],
    })
    expect(await store.apply([{ key: k, delta: 2, max: 5, ifMissing: 'create' }])).toEqual({
      ok: true,
      values: [5],
      ttlMs: [undefined],
    })
    expect(await store.apply([{ key: k, delta: 1, max: 5, ifMissing: 'create' }])).toEqual({
      ok: false,
      index: 0,
      reason: 'limit',
      values: [5],
      ttlMs: [undefined],
    })
    expect(await admin.get(prefix + k)).toBe('5')
  })

  it('apply() refuses a decrement below min with floor and reports a missing counter', async () => {
    const k = key()
    expect(await store.apply([{ key: k, delta: -1, min: 0, ifMissing: 'report' }])).toMatchObject({
      ok: false,
      reason: 'missing',
      values: [undefined],
    })
    expect(await admin.exists(prefix + k)).toBe(0)
    await store.apply([{ key: k, delta: 2, ifMissing: 'create' }])
    expect(await store.apply([{ key: k, delta: -3, min: 0, ifMissing: 'report' }])).toMatchObject({
      ok: false,
      reason: 'floor',
      values: [2],
    })
    expect(await store.apply([{ key: k, delta: -2, min: 0, ifMissing: 'report' }])).toMatchObject({
      ok: true,
      values: [0],
    })
  })

  it('delta 0 reads and never creates the counter', async () => {
    const k = key()
    expect(await store.apply([{ key: k, delta: 0, max: 5, ifMissing: 'create', ttlMs: 1000 }])).toEqual({
      ok: true,
      values: [0],
      ttlMs: [undefined],
    })
    expect(await admin.exists(prefix + k)).toBe(0)
  })

  it('ops on one key apply in order and a refusal of a later op writes nothing', async () => {
    const k = key()
    const other = key()
    const ok = await store.apply([
      { key: k, delta: 2, max: 3, ifMissing: 'create' },
      { key: k, delta: 1, max: 3, ifMissing: 'create' },
    ])
    expect(ok).toEqual({ ok: true, values: [3, 3], ttlMs: [undefined, undefined] })
    const refused = await store.apply([
      { key: other, delta: 1, max: 3, ifMissing: 'create' },
      { key: k, delta: 1, max: 3, ifMissing: 'create' },
    ])
    expect(refused).toMatchObject({ ok: false, index: 1, reason: 'limit', values: [undefined, 3] })
    expect(await admin.exists(prefix + other)).toBe(0)
  })

  it('ttlMs is set on creation only and never re-armed; each result carries the remaining lifetime', async () => {
    const k = key()
    const first = await store.apply([{ key: k, delta: 1, ifMissing: 'create', ttlMs: 60_000 }])
    expect(first).toEqual({ ok: true, values: [1], ttlMs: [60_000] })
    await new Promise((resolve) => setTimeout(resolve, 20))
    const second = await store.apply([{ key: k, delta: 1, ifMissing: 'create', ttlMs: 600_000 }])
    expect(second.ok && second.ttlMs?.[0]).toBeLessThan(60_000)
    expect(await admin.pttl(prefix + k)).toBeLessThan(60_000)
  })

  it('values up to 2^53 - 1 travel exactly; a sum beyond it is refused', async () => {
    const k = key()
    expect(await store.apply([{ key: k, delta: MAX - 1, ifMissing: 'create' }])).toMatchObject({
      ok: true,
      values: [MAX - 1],
    })
    expect(await store.apply([{ key: k, delta: 1, ifMissing: 'create' }])).toMatchObject({ ok: true, values: [MAX] })
    expect(await admin.get(prefix + k)).toBe('9007199254740991')
    expect(await store.apply([{ key: k, delta: 1, ifMissing: 'create' }])).toMatchObject({
      ok: false,
      reason: 'limit',
      values: [MAX],
    })
    expect(await store.get(k)).toEqual({ value: MAX })
    await expect(store.apply([{ key: k, delta: MAX + 1, ifMissing: 'create' }])).rejects.toSatisfy(
      InvalidArgumentError.isInstance,
    )
    await expect(store.apply([{ key: k, delta: 0.5, ifMissing: 'create' }])).rejects.toSatisfy(
      InvalidArgumentError.isInstance,
    )
  })

  it('an idempotency record replays the first result and a refused call records nothing', async () => {
    const k = key()
    const record = `${k}:idem:consume:abc`
    const opts = { idempotencyKey: record, idempotencyTtlMs: 60_000 }
    const first = await store.apply([{ key: k, delta: 2, max: 3, ifMissing: 'create' }], opts)
    expect(first).toEqual({ ok: true, values: [2], ttlMs: [undefined] })
    expect(await store.apply([{ key: k, delta: 2, max: 3, ifMissing: 'create' }], opts)).toEqual({
      ok: true,
      values: [2],
      ttlMs: [undefined],
      replayed: true,
    })
    expect((await store.get(k))?.value).toBe(2)
    const refusedKey = `${k}:idem:consume:def`
    await store.apply([{ key: k, delta: 5, max: 3, ifMissing: 'create' }], {
      idempotencyKey: refusedKey,
      idempotencyTtlMs: 60_000,
    })
    expect(await admin.exists(prefix + refusedKey)).toBe(0)
    // Clearing the record in the compensating refund makes a retry count afresh.
    await store.apply([{ key: k, delta: -2, min: 0, ifMissing: 'report' }], { clearIdempotencyKey: record })
    expect(await admin.exists(prefix + record)).toBe(0)
    expect(await store.apply([{ key: k, delta: 2, max: 3, ifMissing: 'create' }], opts)).toEqual({
      ok: true,
      values: [2],
      ttlMs: [undefined],
    })
  })

  it('seed() sets only when absent; set() keeps a live lifetime; get() and delete()', async () => {
    const k = key()
    expect(await store.get(k)).toBeUndefined()
    expect(await store.seed(k, 7, 50_000)).toBe(true)
    expect(await store.seed(k, 9)).toBe(false)
    const got = await store.get(k)
    expect(got?.value).toBe(7)
    expect(got?.ttlMs).toBeGreaterThan(0)
    expect(got?.ttlMs).toBeLessThanOrEqual(50_000)
    await store.set(k, 4, 900_000)
    expect((await store.get(k))?.ttlMs).toBeLessThanOrEqual(50_000)
    await store.delete(k)
    expect(await store.get(k)).toBeUndefined()
    await store.set(k, 4)
    expect(await store.get(k)).toEqual({ value: 4 })
  })

  it('a lock is released only by its holder token', async () => {
    const lock = `${key()}:lock`
    expect(await store.acquireLock(lock, 'a', 10_000)).toBe(true)
    expect(await store.acquireLock(lock, 'b', 10_000)).toBe(false)
    expect(await store.releaseLock(lock, 'b')).toBe(false)
    expect(await store.releaseLock(lock, 'a')).toBe(true)
    expect(await store.acquireLock(lock, 'b', 10_000)).toBe(true)
  })

  it('a give-back to a missing counter revokes its loader lock even after an op refused before it (the apply script)', async () => {
    const full = key()
    const missing = `${full}:other`
    await store.apply([{ key: full, delta: 1, max: 1, ifMissing: 'create' }])
    expect(await store.acquireLock(`${missing}:lock`, 'load', 10_000)).toBe(true)
    // The refusal at index 0 ends the checks; the give-back after it revokes all the same.
    const answer = await store.apply([
      { key: full, delta: 1, max: 1, ifMissing: 'create' },
      { key: missing, delta: -1, min: 0, ifMissing: 'report' },
    ])
    expect(answer).toMatchObject({ ok: false, index: 0, reason: 'limit' })
    expect(await store.seed(missing, 3, undefined, 'load')).toBe(false)
    expect(await admin.exists(`${prefix}${missing}:lock`)).toBe(0)
  })

  it('calls of one tick: a refund revokes the loader lock only where it meets the counter missing (the batch script)', async () => {
    const [first, second] = [key(), key()]
    for (const k of [first, second]) expect(await store.acquireLock(`${k}:lock`, 'load', 10_000)).toBe(true)
    const consume = (k: string) => store.apply([{ key: k, delta: 1, max: 5, ifMissing: 'create' }])
    const refund = (k: string) => store.apply([{ key: k, delta: -1, min: 0, ifMissing: 'report' }])
    // Refund first: it meets the missing counter. Refund after the consume that creates it: it does not.
    const answers = await Promise.all([refund(first), consume(first), consume(second), refund(second)])
    expect(answers.map((answer) => answer.ok)).toEqual([false, true, true, true])
    expect(await admin.get(`${prefix}${first}:lock`)).toBeNull()
    expect(await admin.get(`${prefix}${second}:lock`)).toBe('load')
  })

  it('seed() with a lock token refuses an empty token before anything is sent', async () => {
    await expect(store.seed(key(), 1, undefined, '')).rejects.toSatisfy(InvalidArgumentError.isInstance)
  })

  it('a prefix with a brace is refused', () => {
    expect(() => createRedisStore({ client: test.client, prefix: 'a{b' })).toThrow(/prefix/)
    expect(() => createRedisStore({ client: test.client, prefix: 'a}' })).toThrow(/prefix/)
    expect(() => createRedisStore({ client: {} as any })).toThrow(/client/)
  })

  it('close() is safe to call twice; calls after it reject with a StoreError', async () => {
    const own = createRedisStore({ client: test.client, prefix })
    await own.get(key())
    await Promise.all([own.close?.(), own.close?.()])
    await own.close?.()
    await expect(own.get(key())).rejects.toMatchObject({ code: 'ERR_STORE' })
  })
})
