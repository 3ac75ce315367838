import type { CounterOp } from '@andromeda/core'
import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { keyGroup, randomKey } from './random.js'
import { sleep, storeTest } from './store-test.js'

const reserve = (key: string, units: number, id: string, holdMs: number, max = 10): CounterOp => ({
  key,
  delta: units,
  max,
  ifMissing: 'create',
  hold: { id, holdMs },
})
const settle = (key: string, id: string, keep: number): CounterOp => ({
  key,
  delta: 0,
  ifMissing: 'create',
  settle: { id, keep },
})
const consume = (key: string, units: number, max = 10): CounterOp => ({ key, delta: units, max, ifMissing: 'create' })

/**
 * Store-level checks of holds (reservations), `CounterOp.hold` and `CounterOp.settle`.
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
export function holdTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  // Only it(...) cases, one per behaviour: a long block that reads as a list.
  describe(`CounterStore holds: ${options.name}`, () => {
    test('held units count toward the value and the bound, like consumed ones', async (store) => {
      const key = randomKey()
      expect(await store.apply([reserve(key, 4, 'h1', 60_000, 5)])).toMatchObject({ ok: true, values: [4] })
      expect(await store.apply([consume(key, 2, 5)])).toMatchObject({ ok: false, reason: 'limit', values: [4] })
      expect(await store.get(key)).toMatchObject({ value: 4 })
    })

    test('settling keeps the kept units and gives the rest back; settling again changes nothing', async (store) => {
      const key = randomKey()
      await store.apply([reserve(key, 4, 'h1', 60_000)])
      await store.apply([reserve(key, 3, 'h2', 60_000)])
      expect(await store.apply([settle(key, 'h1', 1)])).toMatchObject({ ok: true, values: [4] })
      expect(await store.apply([settle(key, 'h1', 1)])).toMatchObject({ ok: true, values: [4], replayed: true })
      expect(await store.apply([settle(key, 'h2', 0)])).toMatchObject({ ok: true, values: [1] })
      expect(await store.get(key)).toMatchObject({ value: 1 })
      // A settled hold never comes back: its units are kept for good.
      await sleep(20)
      expect(await store.apply([consume(key, 9)])).toMatchObject({ ok: true, values: [10] })
    })

    test('keeping more than was held keeps only what was held', async (store) => {
      const key = randomKey()
      await store.apply([reserve(key, 2, 'h1', 60_000)])
      expect(await store.apply([settle(key, 'h1', 5)])).toMatchObject({ ok: true, values: [2] })
    })

    test('a hold neither settled nor released comes back by itself once it expires', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 1, 5)])
      await store.apply([reserve(key, 4, 'abandoned', 40, 5)])
      expect(await store.apply([consume(key, 1, 5)])).toMatchObject({ ok: false, reason: 'limit' })
      await sleep(80)
      // The call that would be refused gets the expired units back first, then fits.
      expect(await store.apply([consume(key, 3, 5)])).toMatchObject({ ok: true, values: [4] })
    })

    test('a read does not count an expired hold', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 2)])
      await store.apply([reserve(key, 3, 'abandoned', 40)])
      expect(await store.get(key)).toMatchObject({ value: 5 })
      await sleep(80)
      expect(await store.get(key)).toMatchObject({ value: 2 })
    })

    test('settling an expired hold is refused with hold, and its units are back', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 1)])
      await store.apply([reserve(key, 3, 'late', 40)])
      await sleep(80)
      expect(await store.apply([settle(key, 'late', 3)])).toMatchObject({
        ok: false,
        index: 0,
        reason: 'hold',
        values: [1],
      })
      expect(await store.apply([settle(key, 'never-made', 1)])).toMatchObject({ ok: false, reason: 'hold' })
      expect(await store.get(key)).toMatchObject({ value: 1 })
    })

    test('holds on several counters are all or nothing, and settle together', async (store) => {
      const [a, b] = keyGroup(2) as [string, string]
      await store.apply([consume(b, 9)])
      expect(await store.apply([reserve(a, 2, 'x', 60_000), reserve(b, 2, 'x', 60_000)])).toMatchObject({
        ok: false,
        index: 1,
        reason: 'limit',
      })
      expect(await store.get(a)).toBeUndefined()
      expect(await store.apply([reserve(a, 2, 'y', 60_000), reserve(b, 1, 'y', 60_000)])).toMatchObject({
        ok: true,
        values: [2, 10],
      })
      expect(await store.apply([settle(a, 'y', 0), settle(b, 'y', 1)])).toMatchObject({ ok: true, values: [0, 10] })
      expect(await store.apply([settle(a, 'y', 0), settle(b, 'y', 1)])).toMatchObject({ ok: true, replayed: true })
    })

    test('a refused hold holds nothing', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 4, 5)])
      expect(await store.apply([reserve(key, 2, 'h', 40, 5)])).toMatchObject({
        ok: false,
        reason: 'limit',
        values: [4],
      })
      expect(await store.apply([settle(key, 'h', 0)])).toMatchObject({ ok: false, reason: 'hold' })
      expect(await store.get(key)).toMatchObject({ value: 4 })
    })

    test('deleting a counter deletes its holds', async (store) => {
      const key = randomKey()
      await store.apply([reserve(key, 2, 'h', 40)])
      await store.delete(key)
      await store.apply([consume(key, 5)])
      await sleep(80)
      // Nothing comes back to the new counter from the old one's hold.
      expect(await store.get(key)).toMatchObject({ value: 5 })
      expect(await store.apply([settle(key, 'h', 0)])).toMatchObject({ ok: false, reason: 'hold' })
    })

    test('holds live as long as their counter', async (store) => {
      const key = randomKey()
      await store.apply([{ ...reserve(key, 2, 'h', 60_000), ttlMs: 40 }])
      await sleep(80)
      expect(await store.get(key)).toBeUndefined()
      await store.apply([consume(key, 1)])
      expect(await store.apply([settle(key, 'h', 2)])).toMatchObject({ ok: false, reason: 'hold', values: [1] })
    })

    test('a lapsed hold of a counter that lapsed gives nothing back to the counter created after it', async (store) => {
      const key = randomKey()
      await store.apply([{ ...reserve(key, 4, 'old', 50), ttlMs: 40 }])
      await sleep(100)
      expect(await store.apply([consume(key, 6)])).toMatchObject({ ok: true, values: [6] })
      // Refused for the bound: expired holds are given back first; the old counter's are not this one's.
      expect(await store.apply([consume(key, 5)])).toMatchObject({ ok: false, reason: 'limit', values: [6] })
      expect(await store.get(key)).toMatchObject({ value: 6 })
    })
  })
}
