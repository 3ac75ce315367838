import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { keyGroup } from './random.js'
import { storeTest } from './store-test.js'

const consume = (key: string, delta: number, max: number, ttlMs?: number) => ({
  key,
  delta,
  max,
  ifMissing: 'create' as const,
  ...(ttlMs === undefined ? {} : { ttlMs }),
})
const refund = (key: string, delta: number) => ({ key, delta: -delta, min: 0, ifMissing: 'report' as const })

/** Idempotency records at the store: replayed once granted, none for a refusal, cleared in the same step. */
export function idempotencyTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  describe(`CounterStore contract: ${options.name}`, () => {
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
      expect((await store.apply([consume(key, 1, 5)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })).ok).toBe(
        false,
      )
      await store.apply([refund(key, 1)])
      expect(
        await store.apply([consume(key, 1, 5)], { idempotencyKey: record, idempotencyTtlMs: 60_000 }),
      ).toMatchObject({
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
  })
}
