import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { consume, refund } from './ops.js'
import { randomKey } from './random.js'
import { sleep, storeTest } from './store-test.js'

/** Counter lifetimes: a TTL set on create and never re-armed, kept by a refusal, and a counter gone once it lapses. */
export function ttlTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  describe(`CounterStore contract: ${options.name}`, () => {
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
  })
}
