import { counterKey, createQuota, HoldExpiredError } from '@andromeda/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore, type RedisCounterStore } from '../src/index.js'
import { canConnect, deleteKeys, randomPrefix, requireService, SHARED_REDIS } from './helpers.js'

const available = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// A counter's holds live in keys next to it (see `src/scripts/holds.ts`). The counter key can
// go missing without them (eviction under maxmemory, a DEL of the counter key alone); these
// tests take it away with a raw DEL, then create the counter again by each path, and check
// that the old holds can neither be settled against the new counter nor give their units back
// to it when they expire: the new counter never counted them, so the quota would over-grant.
describe.runIf(available).each([true, false])('holds of a counter that went missing (batching %s)', (batching) => {
  const prefix = randomPrefix(`stale-holds-${batching ? 'on' : 'off'}`)
  let admin: Redis
  let client: Redis
  let store: RedisCounterStore
  beforeAll(() => {
    admin = new Redis(SHARED_REDIS.port)
    client = new Redis(SHARED_REDIS.port)
    store = createRedisStore({ client, prefix, ...(batching ? {} : { batch: false as const }) })
  })
  afterAll(async () => {
    await store.close()
    await deleteKeys(admin, prefix)
    client.disconnect()
    admin.disconnect()
  })

  let n = 0
  const key = () => `{h:${n++}}:usage`
  const LIMIT = 10
  const reserve = (k: string, units: number, id: string, holdMs: number, max = LIMIT) =>
    store.apply([{ key: k, delta: units, max, ifMissing: 'create', hold: { id, holdMs } }])
  const release = (k: string, id: string) =>
    store.apply([{ key: k, delta: 0, ifMissing: 'report', settle: { id, keep: 0 } }])
  const consume = (k: string, units = 1, max = LIMIT) =>
    store.apply([{ key: k, delta: units, max, ifMissing: 'create' }])
  /** Consumes of one unit until one is refused; how many were granted. */
  const grantsLeft = async (k: string, max = LIMIT) => {
    let granted = 0
    for (let i = 0; i <= max; i++) {
      if (!(await consume(k, 1, max)).ok) break
      granted++
    }
    return granted
  }
  /** The counter key alone goes missing; its hold keys stay. */
  const loseCounter = async (k: string) => {
    expect(await admin.exists(`${prefix}${k}:holds`)).toBe(1)
    expect(await admin.del(prefix + k)).toBe(1)
  }

  it('seed() after the loss: releasing the old hold is refused and gives nothing back', async () => {
    const k = key()
    expect(await reserve(k, 4, 'old', 60_000)).toMatchObject({ ok: true, values: [4] })
    await loseCounter(k)
    expect(await store.seed(k, 6)).toBe(true)
    expect(await release(k, 'old')).toMatchObject({ ok: false, reason: 'hold', values: [6] })
    expect(await store.get(k)).toEqual({ value: 6 })
    expect(await grantsLeft(k)).toBe(4)
    expect(await admin.exists(`${prefix}${k}:holds`, `${prefix}${k}:held`)).toBe(0)
  })

  it('seed() after the loss: the old hold expiring gives nothing back, before a refusal for the limit or a read', async () => {
    const k = key()
    expect(await reserve(k, 4, 'old', 50)).toMatchObject({ ok: true, values: [4] })
    await loseCounter(k)
    expect(await store.seed(k, 6)).toBe(true)
    await sleep(120)
    // Refused for the limit: expired holds are given back first, then the op is checked again.
    expect(await consume(k, 5)).toMatchObject({ ok: false, reason: 'limit', values: [6] })
    expect(await store.get(k)).toEqual({ value: 6 })
    expect(await grantsLeft(k)).toBe(4)
  })

  it('set() creating the counter after the loss starts it without the old holds', async () => {
    const k = key()
    await reserve(k, 4, 'old', 60_000)
    await loseCounter(k)
    await store.set(k, 6)
    expect(await release(k, 'old')).toMatchObject({ ok: false, reason: 'hold', values: [6] })
    expect(await grantsLeft(k)).toBe(4)
  })

  it('no load: a consume creating the counter after the loss starts it without the old holds', async () => {
    const k = key()
    const max = 5
    expect(await reserve(k, 4, 'old', 100, max)).toMatchObject({ ok: true, values: [4] })
    await loseCounter(k)
    expect(await consume(k, 1, max)).toMatchObject({ ok: true, values: [1] })
    expect(await release(k, 'old')).toMatchObject({ ok: false, reason: 'hold', values: [1] })
    await sleep(150)
    expect(await store.get(k)).toEqual({ value: 1 })
    expect(await grantsLeft(k, max)).toBe(4)
    expect(await store.get(k)).toEqual({ value: 5 })
  })

  it('no load: a reserve creating the counter keeps its own hold and drops only the old ones', async () => {
    const k = key()
    await reserve(k, 4, 'old', 60_000)
    await loseCounter(k)
    expect(await reserve(k, 3, 'new', 60_000)).toMatchObject({ ok: true, values: [3] })
    expect(await release(k, 'old')).toMatchObject({ ok: false, reason: 'hold', values: [3] })
    expect(await release(k, 'new')).toMatchObject({ ok: true, values: [0] })
  })

  it('one tick: a consume creates the counter and a release of the old hold right after it is refused', async () => {
    const k = key()
    await reserve(k, 4, 'old', 60_000)
    await loseCounter(k)
    // With batching these share one script call; the release meets the counter just created.
    const [created, released] = await Promise.all([consume(k, 1), release(k, 'old')])
    expect(created).toMatchObject({ ok: true, values: [1] })
    expect(released).toMatchObject({ ok: false, reason: 'hold', values: [1] })
    expect(await store.get(k)).toEqual({ value: 1 })
  })

  it('one all-or-nothing call (the apply script) creating the counter neither settles nor gives back an old hold', async () => {
    const k = key()
    const other = k.replace(':usage', ':other')
    await reserve(k, 4, 'old', 50)
    await loseCounter(k)
    await sleep(120)
    // The second op is over the limit on the new counter (1 + 10): the old expired hold must
    // not be given back to make it fit.
    expect(
      await store.apply([
        { key: k, delta: 1, max: LIMIT, ifMissing: 'create' },
        { key: k, delta: 10, max: LIMIT, ifMissing: 'create' },
      ]),
    ).toMatchObject({ ok: false, index: 1, reason: 'limit', values: [undefined, undefined] })
    expect(await admin.exists(prefix + k)).toBe(0)

    await reserve(k, 4, 'old2', 60_000)
    await loseCounter(k)
    expect(
      await store.apply([
        { key: k, delta: 1, max: LIMIT, ifMissing: 'create' },
        { key: k, delta: 0, ifMissing: 'report', settle: { id: 'old2', keep: 0 } },
      ]),
    ).toMatchObject({ ok: false, index: 1, reason: 'hold' })
    expect(await admin.exists(prefix + k)).toBe(0)
    expect(
      await store.apply([
        { key: k, delta: 1, max: LIMIT, ifMissing: 'create' },
        { key: other, delta: 1, max: LIMIT, ifMissing: 'create' },
      ]),
    ).toMatchObject({ ok: true, values: [1, 1] })
    expect(await admin.exists(`${prefix}${k}:holds`, `${prefix}${k}:held`)).toBe(0)
    expect(await release(k, 'old2')).toMatchObject({ ok: false, reason: 'hold', values: [1] })
  })

  it('hold keys expire with a counter that has a lifetime', async () => {
    const k = key()
    expect(
      await store.apply([
        { key: k, delta: 2, max: LIMIT, ifMissing: 'create', ttlMs: 200, hold: { id: 'h', holdMs: 60_000 } },
      ]),
    ).toMatchObject({ ok: true, values: [2] })
    const [counterTtl, holdsTtl, heldTtl] = await Promise.all(
      [k, `${k}:holds`, `${k}:held`].map((name) => admin.pttl(prefix + name)),
    )
    expect(holdsTtl).toBeGreaterThan(0)
    expect(holdsTtl).toBeLessThanOrEqual(counterTtl!)
    expect(heldTtl).toBeLessThanOrEqual(counterTtl!)
    await sleep(300)
    expect(await admin.exists(prefix + k, `${prefix}${k}:holds`, `${prefix}${k}:held`)).toBe(0)
  })

  it('through a quota: limit 10, usage 6 loaded again after the loss, the old reservation released', async () => {
    const name = `q${n++}`
    const quota = createQuota({ name, store, limit: LIMIT, loadUsage: () => 6 })
    expect((await quota.get('v')).usage).toBe(6)
    const hold = await quota.reserve('v', 4, { holdMs: 60_000 })
    expect(hold.result.usage).toBe(10)
    expect(await admin.del(prefix + counterKey(name, 'v'))).toBe(1)
    expect((await quota.get('v')).usage).toBe(6)
    await expect(hold.release()).rejects.toSatisfy(HoldExpiredError.isInstance)
    let granted = 0
    for (let i = 0; i < LIMIT; i++) if ((await quota.consume('v')).allowed) granted++
    expect(granted).toBe(4)
  })
})
