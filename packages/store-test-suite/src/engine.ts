import { createQuota, InvalidArgumentError } from '@andromeda/core'
import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { countedLoader } from './counted-loader.js'
import { randomName } from './random.js'
import { storeTest } from './store-test.js'

const BAD_COUNTS: unknown[] = [0.5, -1, Number.NaN, Number.POSITIVE_INFINITY, '2', 2 ** 53]

/**
 * Single-quota engine scenarios that must hold on any store (the guarantees of DESIGN.md): limits, loads, refunds, idempotency, key isolation, bad input, hooks and options.
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
export function engineTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  // Only it(...) cases, one per behaviour: a long block that reads as a list.
  describe(`quota engine on ${options.name}`, () => {
    test('limit 5, 50 concurrent consume(id, 1): exactly 5 allowed, usage 5', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 5 })
      const results = await Promise.all(Array.from({ length: 50 }, () => quota.consume('v1', 1)))
      expect(results.filter((r) => r.allowed)).toHaveLength(5)
      expect(results.filter((r) => !r.allowed).every((r) => r.reason === 'limit')).toBe(true)
      expect((await quota.get('v1')).usage).toBe(5)
    })

    test('with loadUsage returning 3, 50 concurrent consumes: exactly 2 allowed, loadUsage called once', async (store) => {
      const loader = countedLoader(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20))
        return 3
      })
      const quota = createQuota({ name: randomName(), store, limit: 5, loadUsage: loader.loadUsage })
      const results = await Promise.all(Array.from({ length: 50 }, () => quota.consume('v1', 1)))
      expect(results.filter((r) => r.allowed)).toHaveLength(2)
      expect(loader.reads()).toBe(1)
      expect((await quota.get('v1')).usage).toBe(5)
    })

    test("a refund that lands while a load reads the system of record is not undone by the load's stale usage", async (store) => {
      // The system of record: 3 claims; an unclaim refunds one, then drops its row.
      let rows = 3
      let reads = 0
      let readStarted!: () => void
      const started = new Promise<void>((resolve) => {
        readStarted = resolve
      })
      let finishRead!: () => void
      const readMayFinish = new Promise<void>((resolve) => {
        finishRead = resolve
      })
      const quota = createQuota({
        name: randomName(),
        store,
        limit: 5,
        loadUsage: async () => {
          const counted = rows
          if (++reads === 1) {
            readStarted()
            await readMayFinish
          }
          return counted
        },
      })
      const consuming = quota.consume('v', 1)
      await started
      // The counter is missing: the refund gives nothing back, and revokes the load under way.
      expect(await quota.refund('v', 1)).toMatchObject({ allowed: false })
      rows = 2
      finishRead()
      expect(await consuming).toMatchObject({ allowed: true, usage: 3 })
      expect(reads).toBe(2)
      expect((await quota.get('v')).usage).toBe(3)
    })

    test('limit 10: 8 allowed, 5 refused with usage still 8, 2 allowed, remaining 0', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 10 })
      expect(await quota.consume('v', 8)).toMatchObject({ allowed: true, usage: 8, remaining: 2 })
      expect(await quota.consume('v', 5)).toMatchObject({ allowed: false, reason: 'limit', usage: 8, remaining: 2 })
      expect(await quota.consume('v', 2)).toMatchObject({ allowed: true, usage: 10, remaining: 0 })
      expect(await quota.get('v')).toMatchObject({ usage: 10, limit: 10, remaining: 0 })
    })

    test('limit 3: ten consume(id, 0) change nothing, then exactly three consume(id, 1) are allowed', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 3, ttlMs: 60_000 })
      for (let i = 0; i < 10; i++) expect(await quota.consume('v', 0)).toMatchObject({ allowed: true, usage: 0 })
      expect(await store.get((await import('@andromeda/core')).counterKey(quota.name, 'v', 'ttl'))).toBeUndefined()
      const results = [
        await quota.consume('v'),
        await quota.consume('v'),
        await quota.consume('v'),
        await quota.consume('v'),
      ]
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false])
    })

    test('limit 0 grants nothing', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 0 })
      expect(await quota.consume('v')).toMatchObject({ allowed: false, reason: 'limit', usage: 0, remaining: 0 })
    })

    test('a refund on a never-used id is refused with floor and creates no counter', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 5 })
      expect(await quota.refund('never')).toMatchObject({ allowed: false, reason: 'floor', usage: 0 })
      expect(await store.get((await import('@andromeda/core')).counterKey(quota.name, 'never'))).toBeUndefined()
    })

    test('consume 1 then refund 2 is refused with floor and usage stays 1', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 5 })
      await quota.consume('v', 1)
      expect(await quota.refund('v', 2)).toMatchObject({ allowed: false, reason: 'floor', usage: 1 })
      expect((await quota.get('v')).usage).toBe(1)
      expect(await quota.refund('v', 1)).toMatchObject({ allowed: true, usage: 0 })
    })

    test('a refund on a missing counter never loads it, even with loadUsage: it gives back nothing and says floor', async (store) => {
      const loader = countedLoader(() => 4)
      const quota = createQuota({ name: randomName(), store, limit: 5, loadUsage: loader.loadUsage })
      // The units a refund undoes were already taken off in the system of record: a reload
      // would count them gone, and the refund would take them off a second time.
      expect(await quota.refund('v', 3)).toMatchObject({ status: 'refused', allowed: false, reason: 'floor', usage: 0 })
      expect(loader.reads()).toBe(0)
      expect(await quota.consume('v', 1)).toMatchObject({ allowed: true, usage: 5 })
      expect(loader.reads()).toBe(1)
    })

    test('the same idempotency key twice counts once; the second result says replayed', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 10 })
      const first = await quota.consume('v', 2, { idempotencyKey: 'req-1' })
      const second = await quota.consume('v', 2, { idempotencyKey: 'req-1' })
      expect(first.status).toBe('granted')
      expect(second).toMatchObject({ status: 'replayed', allowed: true, usage: 2 })
      expect((await quota.get('v')).usage).toBe(2)
      expect(await quota.refund('v', 1, { idempotencyKey: 'req-1' })).toMatchObject({ allowed: true, usage: 1 })
      expect(await quota.refund('v', 1, { idempotencyKey: 'req-1' })).toMatchObject({ status: 'replayed', usage: 1 })
    })

    test('ids and names with separators, braces, unicode or 10 kB never share a counter', async (store) => {
      const name = randomName()
      const cases: Array<[string, string]> = [
        [`${name}`, 'a:b'],
        [`${name}:a`, 'b'],
        [`${name}`, 'a'],
        [`${name}`, 'b:'],
        [`${name}`, '{abc'],
        [`${name}`, 'x{}y{z}'],
        [`${name}`, '%7B'],
        [`${name}`, 'ü'],
        [`${name}`, 'u\u0308'],
        [`${name}`, '😀'],
        [`${name}`, 'é'.repeat(5_120)],
        [`${name}`, 'a'.repeat(10_240)],
      ]
      const quotas = new Map<string, ReturnType<typeof createQuota>>()
      const quotaOf = (n: string) =>
        quotas.get(n) ?? quotas.set(n, createQuota({ name: n, store, limit: 1000 })).get(n)!
      for (const [i, [n, id]] of cases.entries()) await quotaOf(n).consume(id, i + 1)
      for (const [i, [n, id]] of cases.entries()) expect((await quotaOf(n).get(id)).usage).toBe(i + 1)
    })

    test('bad cost, limit and ttlMs are InvalidArgumentErrors naming the argument, and change nothing', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 10 })
      await quota.consume('v', 1)
      for (const bad of BAD_COUNTS) {
        for (const call of [() => quota.consume('v', bad as number), () => quota.refund('v', bad as number)]) {
          const error = await call().catch((e: unknown) => e)
          expect(InvalidArgumentError.isInstance(error) && error.argument).toBe('cost')
        }
        const limited = createQuota({ name: randomName(), store, limit: () => bad as number })
        const limitError = await limited.consume('v').catch((e: unknown) => e)
        expect(InvalidArgumentError.isInstance(limitError) && limitError.argument).toBe('limit')
        expect(() => createQuota({ name: randomName(), store, limit: bad as number })).toThrow(InvalidArgumentError)
        const timed = createQuota({ name: randomName(), store, limit: 5, ttlMs: () => bad as number })
        const ttlError = await timed.consume('v').catch((e: unknown) => e)
        expect(InvalidArgumentError.isInstance(ttlError) && ttlError.argument).toBe('ttlMs')
        expect(() => createQuota({ name: randomName(), store, limit: 5, ttlMs: bad as number })).toThrow(/ttlMs/)
      }
      for (const badId of ['', 42, null, undefined, 'x'.repeat(20_000), '\uD800']) {
        const error = await quota.consume(badId as string).catch((e: unknown) => e)
        expect(InvalidArgumentError.isInstance(error) && error.argument).toBe('id')
      }
      expect((await quota.get('v')).usage).toBe(1)
    })

    test('a hook that throws does not change the result of the call', async (store) => {
      const explode = () => {
        throw new Error('hook failed')
      }
      const quota = createQuota({
        name: randomName(),
        store,
        limit: 1,
        hooks: {
          onConsume: explode,
          onExceeded: async () => Promise.reject(new Error('async hook failed')),
          onRefund: explode,
        },
      })
      expect(await quota.consume('v')).toMatchObject({ allowed: true, usage: 1 })
      expect(await quota.consume('v')).toMatchObject({ allowed: false, usage: 1 })
      expect(await quota.refund('v')).toMatchObject({ allowed: true, usage: 0 })
    })

    test('a limit function returning null allows the call and counts nothing', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: (id) => (id === 'vip' ? null : 1) })
      for (let i = 0; i < 3; i++) {
        expect(await quota.consume('vip')).toMatchObject({
          status: 'unlimited',
          allowed: true,
          usage: 0,
          limit: Infinity,
        })
      }
      expect(await store.get((await import('@andromeda/core')).counterKey(quota.name, 'vip'))).toBeUndefined()
    })

    test('a quota-level cost override replaces the per-call cost', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 10, cost: (_id, requested) => requested * 3 })
      expect(await quota.consume('v', 2)).toMatchObject({ allowed: true, usage: 6 })
    })

    test('data from the call reaches limit and loadUsage', async (store) => {
      const seen: unknown[] = []
      const quota = createQuota<{ tenant: string }>({
        name: randomName(),
        store,
        limit: (_id, ctx) => {
          seen.push(['limit', ctx.data?.tenant])
          return 10
        },
        loadUsage: (_id, ctx) => {
          seen.push(['loadUsage', ctx.data?.tenant])
          return 0
        },
      })
      await quota.consume('v', 1, { data: { tenant: 't1' } })
      expect(seen).toEqual([
        ['limit', 't1'],
        ['loadUsage', 't1'],
      ])
    })

    test('set() and reset() overwrite and delete the usage', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 10 })
      await quota.set('v', 9)
      expect(await quota.consume('v', 2)).toMatchObject({ allowed: false, usage: 9 })
      await quota.reset('v')
      expect((await quota.get('v')).usage).toBe(0)
    })

    test('a period quota reports resetAt at the end of the window', async (store) => {
      const now = Date.UTC(2026, 0, 31, 23, 59, 0)
      const quota = createQuota({ name: randomName(), store, limit: 2, period: 'month', clock: () => now })
      expect(await quota.consume('v')).toMatchObject({ allowed: true, resetAt: Date.UTC(2026, 1, 1) })
    })
  })
}
