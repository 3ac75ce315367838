import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { randomKey } from './random.js'
import { sleep, storeTest } from './store-test.js'

/** `acquireLock` / `releaseLock`: ownership by token, and expiry. */
export function lockTests(options: ConformanceOptions): void {
  const test = storeTest(options)

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
  })
}
