import type { CounterStore } from '@andromeda/core'
import { describe, expect, it } from 'vitest'
import { type ConformanceOptions, keyGroup, randomKey, sleep, withStore } from './options.js'

const consume = (key: string, delta: number, max: number, ttlMs?: number) => ({
  key,
  delta,
  max,
  ifMissing: 'create' as const,
  ...(ttlMs === undefined ? {} : { ttlMs }),
})
const refund = (key: string, delta: number) => ({ key, delta: -delta, min: 0, ifMissing: 'report' as const })

/** Store-level checks of the CounterStore contract (packages/core/src/store.ts). */
export function contractTests(options: ConformanceOptions): void {
  const test = (name: string, fn: (store: CounterStore) => Promise<void>, timeout?: number) =>
    it(name, () => withStore(options, fn), timeout)

  describe(`CounterStore contract: ${options.name}`, () => {
    test('apply() on a missing counter with ifMissing create starts from 0', async (store) => {
      const key = randomKey()
      expect(await store.apply([consume(key, 3, 10)])).toMatchObject({ ok: true, values: [3] })
      expect(await store.get(key)).toMatchObject({ value: 3 })
    })

    test('apply() past max is refused with limit and changes nothing', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 8, 10)])
      expect(await store.apply([consume(key, 3, 10)])).toMatchObject({ ok: false, index: 0, reason: 'limit', values: [8] })
      expect((await store.get(key))?.value).toBe(8)
      expect(await store.apply([consume(key, 2, 10)])).toMatchObject({ ok: true, values: [10] })
    })

    test('apply() below min is refused with floor, whole, never clamped', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 1, 10)])
      expect(await store.apply([refund(key, 2)])).toMatchObject({ ok: false, index: 0, reason: 'floor', values: [1] })
      expect((await store.get(key))?.value).toBe(1)
      expect(await store.apply([refund(key, 1)])).toMatchObject({ ok: true, values: [0] })
    })

    test('apply() with ifMissing report on a missing counter reports it and creates nothing', async (store) => {
      const key = randomKey()
      expect(await store.apply([refund(key, 1)])).toMatchObject({ ok: false, index: 0, reason: 'missing' })
      expect(await store.apply([{ key, delta: 1, max: 5, ifMissing: 'report' }])).toMatchObject({ ok: false, reason: 'missing' })
      expect(await store.get(key)).toBeUndefined()
    })

    test('apply() refuses for the bound before it reports another op\'s missing counter (no load could make it fit)', async (store) => {
      const [missing, full, other] = keyGroup(3) as [string, string, string]
      expect(await store.apply([{ key: full, delta: 2, max: 2, ifMissing: 'create' }])).toMatchObject({ ok: true })
      const refused = await store.apply([
        { key: missing, delta: 1, max: 5, ifMissing: 'report' },
        { key: full, delta: 1, max: 2, ifMissing: 'create' },
      ])
      expect(refused).toMatchObject({ ok: false, index: 1, reason: 'limit', values: [undefined, 2] })
      // Nothing is over its bound: the missing counter is reported, the first one in op order.
      const reported = await store.apply([
        { key: other, delta: 1, max: 5, ifMissing: 'create' },
        { key: missing, delta: 1, max: 5, ifMissing: 'report' },
        { key: missing, delta: 1, max: 5, ifMissing: 'report' },
        { key: full, delta: -1, min: 0, ifMissing: 'report' },
      ])
      expect(reported).toMatchObject({ ok: false, index: 1, reason: 'missing' })
      expect(await store.get(missing)).toBeUndefined()
      expect(await store.get(other)).toBeUndefined()
      expect(await store.get(full)).toMatchObject({ value: 2 })
    })

    test('apply() with delta 0 reads and never creates the counter', async (store) => {
      const key = randomKey()
      expect(await store.apply([consume(key, 0, 5, 60_000)])).toMatchObject({ ok: true, values: [0] })
      expect(await store.get(key)).toBeUndefined()
    })

    test('apply() over several keys is all or nothing', async (store) => {
      const [a, b] = keyGroup(2) as [string, string]
      await store.apply([consume(b, 5, 5)])
      expect(await store.apply([consume(a, 1, 5), consume(b, 1, 5)])).toMatchObject({ ok: false, index: 1, reason: 'limit' })
      expect(await store.get(a)).toBeUndefined()
      expect((await store.get(b))?.value).toBe(5)
      expect(await store.apply([consume(a, 1, 5), refund(b, 2)])).toMatchObject({ ok: true, values: [1, 3] })
    })

    test('apply() with two ops on one key applies them in order, each seeing the previous', async (store) => {
      const [key] = keyGroup(1) as [string]
      expect(await store.apply([consume(key, 2, 3), consume(key, 2, 3)])).toMatchObject({ ok: false, index: 1, reason: 'limit' })
      expect(await store.get(key)).toBeUndefined()
      expect(await store.apply([consume(key, 2, 3), consume(key, 1, 3)])).toMatchObject({ ok: true, values: [3, 3] })
    })

    test('a TTL is set when the counter is created and never re-armed', async (store) => {
      const key = randomKey()
      const created = await store.apply([consume(key, 1, 10, 60_000)])
      expect(created.ok && created.ttlMs?.[0]).toBeGreaterThan(0)
      expect(created.ok && created.ttlMs?.[0]).toBeLessThanOrEqual(60_000)
      const first = (await store.get(key))?.ttlMs ?? 0
      expect(first).toBeGreaterThan(0)
      await sleep(30)
      await store.apply([consume(key, 1, 10, 60_000)])
      await store.apply([refund(key, 1)])
      const later = (await store.get(key))?.ttlMs ?? 0
      expect(later).toBeGreaterThan(0)
      expect(later).toBeLessThan(first)
    })

    test('a refused apply() changes neither the value nor the TTL', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 5, 5, 60_000)])
      const before = await store.get(key)
      await sleep(20)
      expect((await store.apply([consume(key, 1, 5, 60_000)])).ok).toBe(false)
      expect((await store.apply([refund(key, 6)])).ok).toBe(false)
      const after = await store.get(key)
      expect(after?.value).toBe(5)
      expect(after?.ttlMs).toBeLessThanOrEqual(before?.ttlMs ?? 0)
    })

    test('a counter expires after its TTL and is then missing', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 1, 10, 100)])
      await sleep(250)
      expect(await store.get(key)).toBeUndefined()
      expect(await store.apply([refund(key, 1)])).toMatchObject({ ok: false, reason: 'missing' })
      expect(await store.get(key)).toBeUndefined()
    })

    test('seed() sets only if absent', async (store) => {
      const key = randomKey()
      expect(await store.seed(key, 7, 60_000)).toBe(true)
      expect(await store.seed(key, 1)).toBe(false)
      const snapshot = await store.get(key)
      expect(snapshot?.value).toBe(7)
      expect(snapshot?.ttlMs).toBeGreaterThan(0)
    })

    test('set() overwrites the value, keeps a live TTL and gives a new counter its TTL', async (store) => {
      const key = randomKey()
      await store.set(key, 4)
      expect(await store.get(key)).toEqual({ value: 4 })
      const timed = randomKey()
      await store.set(timed, 2, 60_000)
      const first = (await store.get(timed))?.ttlMs ?? 0
      expect(first).toBeGreaterThan(0)
      await sleep(20)
      await store.set(timed, 9, 60_000)
      const after = await store.get(timed)
      expect(after?.value).toBe(9)
      expect(after?.ttlMs).toBeLessThanOrEqual(first)
    })

    test('delete() removes a counter; deleting a missing one is fine', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 1, 10)])
      await store.delete(key)
      expect(await store.get(key)).toBeUndefined()
      await store.delete(key)
    })

    test('a lock is released only by the token that holds it', async (store) => {
      const key = randomKey('lock')
      expect(await store.acquireLock(key, 'a', 10_000)).toBe(true)
      expect(await store.acquireLock(key, 'b', 10_000)).toBe(false)
      expect(await store.releaseLock(key, 'b')).toBe(false)
      expect(await store.acquireLock(key, 'b', 10_000)).toBe(false)
      expect(await store.releaseLock(key, 'a')).toBe(true)
      expect(await store.acquireLock(key, 'b', 10_000)).toBe(true)
      expect(await store.releaseLock(key, 'a')).toBe(false)
    })

    test('a lock expires after its TTL', async (store) => {
      const key = randomKey('lock')
      expect(await store.acquireLock(key, 'a', 100)).toBe(true)
      await sleep(250)
      expect(await store.acquireLock(key, 'b', 10_000)).toBe(true)
    })

    test('an idempotent apply() is counted once and replays its result', async (store) => {
      const [key, record] = keyGroup(2) as [string, string]
      const first = await store.apply([consume(key, 2, 10)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })
      const second = await store.apply([consume(key, 2, 10)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })
      expect(first).toMatchObject({ ok: true, values: [2] })
      expect(first.ok && first.replayed).toBeFalsy()
      expect(second).toMatchObject({ ok: true, values: [2], replayed: true })
      expect((await store.get(key))?.value).toBe(2)
    })

    test('a refused idempotent apply() records nothing, so a retry is evaluated afresh', async (store) => {
      const [key, record] = keyGroup(2) as [string, string]
      await store.apply([consume(key, 5, 5)])
      expect((await store.apply([consume(key, 1, 5)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })).ok).toBe(false)
      await store.apply([refund(key, 1)])
      expect(await store.apply([consume(key, 1, 5)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })).toMatchObject({
        ok: true,
        values: [5],
      })
    })

    test('clearIdempotencyKey deletes the record in the same step', async (store) => {
      const [key, record] = keyGroup(2) as [string, string]
      await store.apply([consume(key, 1, 10)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })
      await store.apply([refund(key, 1)], { clearIdempotencyKey: record })
      const retried = await store.apply([consume(key, 1, 10)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })
      expect(retried).toMatchObject({ ok: true, values: [1] })
      expect(retried.ok && retried.replayed).toBeFalsy()
    })

    test('200 parallel applies on limit 50 grant exactly 50', async (store) => {
      const key = randomKey()
      const results = await Promise.all(Array.from({ length: 200 }, () => store.apply([consume(key, 1, 50)])))
      expect(results.filter((r) => r.ok)).toHaveLength(50)
      expect((await store.get(key))?.value).toBe(50)
    })

    test('values near 2^53 are exact and never pass the largest safe integer', async (store) => {
      const key = randomKey()
      const max = Number.MAX_SAFE_INTEGER
      expect(await store.seed(key, max - 2)).toBe(true)
      expect(await store.apply([consume(key, 1, max)])).toMatchObject({ ok: true, values: [max - 1] })
      expect(await store.apply([consume(key, 1, max)])).toMatchObject({ ok: true, values: [max] })
      expect(await store.apply([consume(key, 1, max)])).toMatchObject({ ok: false, reason: 'limit', values: [max] })
      expect(await store.get(key)).toEqual({ value: max })
    })

    test('keys that differ only in odd characters never share a counter', async (store) => {
      const tag = randomKey('')
      const suffixes = ['a:b', 'a', 'b:', '{abc', 'x{}y{z}', 'ü', 'u\u0308', '😀', 'a'.repeat(10_240)]
      for (const [i, suffix] of suffixes.entries()) await store.apply([consume(`${tag}${suffix}`, i + 1, 1_000_000)])
      for (const [i, suffix] of suffixes.entries()) expect((await store.get(`${tag}${suffix}`))?.value).toBe(i + 1)
    })
  })
}
