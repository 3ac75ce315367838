import { describe, expect } from 'vitest'
import { type BadCall, expectEachRejected, show } from './bad-input.js'
import type { ConformanceOptions } from './conformance-options.js'
import { consume, refund } from './ops.js'
import { keyGroup } from './random.js'
import { storeTest } from './store-test.js'

/**
 * Idempotency records at the store: replayed once granted, none for a refusal, cleared in the same step; bad options.
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
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

    test('apply() rejects a bad idempotencyKey, idempotencyTtlMs or clearIdempotencyKey with an InvalidArgumentError naming it, and changes nothing', async (store) => {
      const [key, record] = keyGroup(2) as [string, string]
      await store.apply([consume(key, 3, 10)])
      const call = (options: object) => () => store.apply([consume(key, 1, 10)], options)
      await expectEachRejected([
        ...['', 42, null, {}].map(
          (v): BadCall => [
            'idempotencyKey',
            `idempotencyKey ${show(v)}`,
            call({ idempotencyKey: v, idempotencyTtlMs: 60_000 }),
          ],
        ),
        // null is left out: the Redis and SQL stores read a null lifetime as the default (`?? default`).
        ...[0, -1, 1.5, Number.NaN, '60000'].map(
          (v): BadCall => [
            'idempotencyTtlMs',
            `idempotencyTtlMs ${show(v)}`,
            call({ idempotencyKey: record, idempotencyTtlMs: v }),
          ],
        ),
        ...['', 42, null, {}].map(
          (v): BadCall => ['clearIdempotencyKey', `clearIdempotencyKey ${show(v)}`, call({ clearIdempotencyKey: v })],
        ),
      ])
      expect(await store.get(key)).toMatchObject({ value: 3 })
      // No record was written under the good key: the call is counted, not replayed.
      const counted = await store.apply([consume(key, 1, 10)], { idempotencyKey: record, idempotencyTtlMs: 60_000 })
      expect(counted).toMatchObject({ ok: true, values: [4] })
      expect(counted.ok && counted.replayed).toBeFalsy()
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
