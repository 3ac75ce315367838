import type { CounterOp } from '@andromeda/core'
import { lockKey } from '@andromeda/core/store'
import { describe, expect } from 'vitest'
import { BAD_KEYS, BAD_TOKENS, BAD_TTLS, type BadCall, expectEachRejected, show } from './bad-input.js'
import type { ConformanceOptions } from './conformance-options.js'
import { refund } from './ops.js'
import { keyGroup, randomKey } from './random.js'
import { sleep, storeTest } from './store-test.js'

const settle = (key: string): CounterOp => ({ key, delta: 0, ifMissing: 'report', settle: { id: 'h1', keep: 0 } })

/**
 * `acquireLock` / `releaseLock`: ownership by token, and expiry; a seed under a loader lock, and give-backs that revoke it; bad arguments.
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
export function lockTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  // Only it(...) cases (four made in loops), one per behaviour: a long block that reads as a list.
  describe(`CounterStore contract: ${options.name}`, () => {
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

    test("seed() with a lock token seeds only while that token holds the counter's loader lock", async (store) => {
      const key = randomKey()
      expect(await store.seed(key, 3, undefined, 'a')).toBe(false)
      expect(await store.acquireLock(lockKey(key), 'a', 10_000)).toBe(true)
      expect(await store.seed(key, 3, undefined, 'b')).toBe(false)
      expect(await store.get(key)).toBeUndefined()
      expect(await store.seed(key, 3, undefined, 'a')).toBe(true)
      expect(await store.get(key)).toMatchObject({ value: 3 })
      expect(await store.seed(key, 9, undefined, 'a')).toBe(false)
      expect(await store.get(key)).toMatchObject({ value: 3 })
    })

    test('acquireLock() rejects a bad key, token or ttlMs with an InvalidArgumentError naming it, and takes no lock', async (store) => {
      const key = randomKey('lock')
      await expectEachRejected([
        ...BAD_KEYS.map(
          (v): BadCall => [
            'key',
            `acquireLock(${show(v)}, 'a', 10000)`,
            () => store.acquireLock(v as string, 'a', 10_000),
          ],
        ),
        ...BAD_TOKENS.map(
          (v): BadCall => [
            'token',
            `acquireLock(key, ${show(v)}, 10000)`,
            () => store.acquireLock(key, v as string, 10_000),
          ],
        ),
        ...[...BAD_TTLS, undefined].map(
          (v): BadCall => [
            'ttlMs',
            `acquireLock(key, 'a', ${show(v)})`,
            () => store.acquireLock(key, 'a', v as number),
          ],
        ),
      ])
      // Free: another token takes it.
      expect(await store.acquireLock(key, 'b', 10_000)).toBe(true)
    })

    test('releaseLock() rejects a bad key or token with an InvalidArgumentError naming it, and keeps the lock', async (store) => {
      const key = randomKey('lock')
      expect(await store.acquireLock(key, 'a', 10_000)).toBe(true)
      await expectEachRejected([
        ...BAD_KEYS.map(
          (v): BadCall => ['key', `releaseLock(${show(v)}, 'a')`, () => store.releaseLock(v as string, 'a')],
        ),
        ...BAD_TOKENS.map(
          (v): BadCall => ['token', `releaseLock(key, ${show(v)})`, () => store.releaseLock(key, v as string)],
        ),
      ])
      expect(await store.acquireLock(key, 'b', 10_000)).toBe(false)
      expect(await store.releaseLock(key, 'a')).toBe(true)
    })

    test('seed() rejects a bad lock token (an empty string too) with an InvalidArgumentError naming lockToken, and seeds nothing', async (store) => {
      const key = randomKey()
      expect(await store.acquireLock(lockKey(key), 'load', 10_000)).toBe(true)
      await expectEachRejected(
        BAD_TOKENS.filter((v) => v !== undefined).map(
          (v): BadCall => [
            'lockToken',
            `seed(key, 3, undefined, ${show(v)})`,
            () => store.seed(key, 3, undefined, v as string),
          ],
        ),
      )
      expect(await store.get(key)).toBeUndefined()
      // The load still holds its lock, and seeds with its own token.
      expect(await store.seed(key, 3, undefined, 'load')).toBe(true)
    })

    for (const [giveBack, op] of [
      ['a refund', (key: string) => refund(key, 1)],
      ['a settle', settle],
    ] as const) {
      test(`${giveBack} that meets the missing counter revokes its loader lock: the load's seed is refused`, async (store) => {
        const key = randomKey()
        expect(await store.acquireLock(lockKey(key), 'load', 10_000)).toBe(true)
        expect(await store.apply([op(key)])).toMatchObject({ ok: false, index: 0, reason: 'missing' })
        expect(await store.seed(key, 3, undefined, 'load')).toBe(false)
        expect(await store.get(key)).toBeUndefined()
        // The lock is free: the next load takes it and seeds.
        expect(await store.acquireLock(lockKey(key), 'reload', 10_000)).toBe(true)
        expect(await store.seed(key, 2, undefined, 'reload')).toBe(true)
        expect(await store.get(key)).toMatchObject({ value: 2 })
      })
    }

    for (const refusedFirst of [false, true]) {
      test(`a give-back revokes the missing counter's lock even when an op ${refusedFirst ? 'before' : 'after'} it is refused`, async (store) => {
        const [missing, full] = keyGroup(2) as [string, string]
        const overLimit: CounterOp = { key: full, delta: 1, max: 1, ifMissing: 'create' }
        expect(await store.apply([overLimit])).toMatchObject({ ok: true })
        expect(await store.acquireLock(lockKey(missing), 'load', 10_000)).toBe(true)
        const ops = refusedFirst ? [overLimit, refund(missing, 1)] : [refund(missing, 1), overLimit]
        expect(await store.apply(ops)).toMatchObject({ ok: false, index: refusedFirst ? 0 : 1, reason: 'limit' })
        expect(await store.seed(missing, 3, undefined, 'load')).toBe(false)
      })
    }

    test('a refund on a live counter, or a consume that meets a missing one, leaves the loader lock alone', async (store) => {
      const [live, missing] = keyGroup(2) as [string, string]
      await store.apply([{ key: live, delta: 2, max: 5, ifMissing: 'create' }])
      expect(await store.acquireLock(lockKey(live), 'load', 10_000)).toBe(true)
      expect(await store.apply([refund(live, 1)])).toMatchObject({ ok: true, values: [1] })
      expect(await store.acquireLock(lockKey(live), 'other', 10_000)).toBe(false)
      expect(await store.acquireLock(lockKey(missing), 'load', 10_000)).toBe(true)
      expect(await store.apply([{ key: missing, delta: 1, max: 5, ifMissing: 'report' }])).toMatchObject({
        reason: 'missing',
      })
      expect(await store.seed(missing, 3, undefined, 'load')).toBe(true)
    })
  })
}
