import { createQuota, LoadError } from '@andromeda/core'
import { type CounterStore, wrapStore } from '@andromeda/core/store'
import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { countedLoader } from './counted-loader.js'
import { randomName } from './random.js'
import { sleep, storeTest } from './store-test.js'

/**
 * The engine's loads on this store, where a load meets other callers: a caller that gives up,
 * a counter that vanishes right after its load, refunds that keep revoking it. Part of the
 * `locks` concern (loads run under the loader lock).
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
export function loadTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  // Only it(...) cases, one per behaviour: a block that reads as a list.
  describe(`loads on ${options.name}`, () => {
    test('a caller whose signal aborts while its counter loads gets its reason, and a failed load is no unhandled rejection', async (store) => {
      const unhandled: unknown[] = []
      const onUnhandled = (reason: unknown) => unhandled.push(reason)
      process.on('unhandledRejection', onUnhandled)
      try {
        const quota = createQuota({
          name: randomName(),
          store,
          limit: 10,
          loadUsage: async () => {
            await sleep(20)
            throw new Error('database down')
          },
        })
        for (const call of [
          (signal: AbortSignal) => quota.get('v', { signal }),
          (signal: AbortSignal) => quota.consume('v', 1, { signal }),
        ]) {
          const controller = new AbortController()
          const pending = call(controller.signal)
          queueMicrotask(() => controller.abort(new Error('client went away')))
          await expect(pending).rejects.toThrow('client went away')
        }
        await sleep(100)
        expect(unhandled).toEqual([])
      } finally {
        process.off('unhandledRejection', onUnhandled)
      }
    })

    test('get() never reads a counter that should be loaded as 0: one that vanishes right after its load is loaded again', async (store) => {
      let vanish = true
      // The first seed is undone at once, as a reset racing the load would.
      const racing: CounterStore = wrapStore(store, {
        call: (method, args, invoke) => {
          if (method !== 'seed' || !vanish) return invoke()
          vanish = false
          return Promise.resolve(invoke()).then(async (seeded) => {
            await store.delete(args[0] as string)
            return seeded
          })
        },
      })
      const loader = countedLoader(() => 5)
      const quota = createQuota({ name: randomName(), store: racing, limit: 10, loadUsage: loader.loadUsage })
      expect(await quota.get('v')).toMatchObject({ usage: 5, remaining: 5 })
      expect(loader.reads()).toBe(2)
    })

    test('refunds that revoke every load of a counter fail the load with a LoadError that says so, after lock.retries reads again', async (store) => {
      // A refund lands on the missing counter while each read runs: it revokes the load.
      const loader = countedLoader(async () => {
        expect(await quota.refund('v', 1)).toMatchObject({ allowed: false })
        return 5
      })
      const quota = createQuota({
        name: randomName(),
        store,
        limit: 10,
        lock: { retries: 2 },
        loadUsage: loader.loadUsage,
      })
      const error = await quota.consume('v', 1).catch((e: unknown) => e)
      expect(LoadError.isInstance(error)).toBe(true)
      expect((error as Error).message).toMatch(/revoked by refunds/)
      expect(loader.reads()).toBe(3)
      expect((await store.get(`{${quota.name}:v}:usage`)) ?? undefined).toBeUndefined()
    })
  })
}
