import {
  type CounterOp,
  type CounterStore,
  InvalidArgumentError,
  QuotaExceededError,
  StoreError,
  consumeAll,
  createQuota,
  transactAll,
  wrapStore,
} from '@andromeda/core'
import { describe, expect, it } from 'vitest'
import { type ConformanceOptions, randomName, sagaOnly, withStore } from './options.js'

/** The same store on the saga path, but `apply` rejects with a StoreError from its `failFrom`-th call on. */
function failingFrom(store: CounterStore, failFrom: number): CounterStore {
  let calls = 0
  return wrapStore(store, {
    capabilities: { canApplyTogether: () => false },
    call: (method, args, invoke) => {
      if (method !== 'apply') return invoke()
      calls++
      // Give-backs (negative deltas, settles) still reach the store, so a rollback can be observed.
      if (calls >= failFrom && (args[0] as CounterOp[]).some((op) => op.delta > 0)) {
        return Promise.reject(new StoreError('injected fault', { retryable: true }))
      }
      return invoke()
    },
  })
}

const BAD_COUNTS: unknown[] = [0.5, -1, Number.NaN, Number.POSITIVE_INFINITY, '2', 2 ** 53]

/** Engine scenarios that must hold on any store (the guarantees of DESIGN.md). */
export function engineTests(options: ConformanceOptions): void {
  const test = (name: string, fn: (store: CounterStore) => Promise<void>, timeout?: number) =>
    it(name, () => withStore(options, fn), timeout)

  describe(`quota engine on ${options.name}`, () => {
    test('limit 5, 50 concurrent consume(id, 1): exactly 5 allowed, usage 5', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 5 })
      const results = await Promise.all(Array.from({ length: 50 }, () => quota.consume('v1', 1)))
      expect(results.filter((r) => r.allowed)).toHaveLength(5)
      expect(results.filter((r) => !r.allowed).every((r) => r.reason === 'limit')).toBe(true)
      expect((await quota.get('v1')).usage).toBe(5)
    })

    test('with loadUsage returning 3, 50 concurrent consumes: exactly 2 allowed, loadUsage called once', async (store) => {
      let loads = 0
      const quota = createQuota({
        name: randomName(),
        store,
        limit: 5,
        loadUsage: async () => {
          loads++
          await new Promise((resolve) => setTimeout(resolve, 20))
          return 3
        },
      })
      const results = await Promise.all(Array.from({ length: 50 }, () => quota.consume('v1', 1)))
      expect(results.filter((r) => r.allowed)).toHaveLength(2)
      expect(loads).toBe(1)
      expect((await quota.get('v1')).usage).toBe(5)
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
      const results = [await quota.consume('v'), await quota.consume('v'), await quota.consume('v'), await quota.consume('v')]
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
      let loads = 0
      const quota = createQuota({
        name: randomName(),
        store,
        limit: 5,
        loadUsage: () => {
          loads++
          return 4
        },
      })
      // The units a refund undoes were already taken off in the system of record: a reload
      // would count them gone, and the refund would take them off a second time.
      expect(await quota.refund('v', 3)).toMatchObject({ status: 'refused', allowed: false, reason: 'floor', usage: 0 })
      expect(loads).toBe(0)
      expect(await quota.consume('v', 1)).toMatchObject({ allowed: true, usage: 5 })
      expect(loads).toBe(1)
    })

    test('transact whose function throws leaves usage unchanged and rethrows that error', async (store) => {
      const compensated: number[] = []
      const quota = createQuota({
        name: randomName(),
        store,
        limit: 5,
        hooks: { onCompensate: (e) => compensated.push(e.cost) },
      })
      await quota.consume('v', 2)
      const boom = new Error('insert failed')
      await expect(
        quota.transact('v', 1, async () => {
          throw boom
        }),
      ).rejects.toBe(boom)
      expect((await quota.get('v')).usage).toBe(2)
      expect(compensated).toEqual([1])
      expect(await quota.transact('v', 3, (r) => r.usage)).toBe(5)
      await expect(quota.transact('v', 1, () => 'never runs')).rejects.toSatisfy(QuotaExceededError.isInstance)
    })

    test('transact with an idempotency key whose function throws can be retried afresh', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 5 })
      await expect(
        quota.transact('v', 1, () => Promise.reject(new Error('x')), { idempotencyKey: 'req-1' }),
      ).rejects.toThrow('x')
      const retried = await quota.transact('v', 1, (r) => r, { idempotencyKey: 'req-1' })
      expect(retried).toMatchObject({ status: 'granted', allowed: true, usage: 1 })
    })

    test('consumeAll with quota A free, quota B full and C after it is refused, names B, leaves A and C unchanged and says A was rolled back, C not tried', async (store) => {
      const a = createQuota({ name: randomName('a'), store, limit: 10 })
      const b = createQuota({ name: randomName('b'), store, limit: 1 })
      const c = createQuota({ name: randomName('c'), store, limit: 10 })
      await b.consume('u')
      const result = await consumeAll([
        { quota: a, id: 'v' },
        { quota: b, id: 'u' },
        { quota: c, id: 'w' },
      ])
      expect(result).toMatchObject({ allowed: false, refused: { index: 1, quota: b.name, reason: 'limit' } })
      // A had room (never kept), C came after the refusal: each says so rather than 'limit'.
      expect(result.results.map((r) => [r.allowed, r.reason, r.usage, r.remaining])).toEqual([
        [false, 'rolled-back', 0, 10],
        [false, 'limit', 1, 0],
        [false, 'not-tried', 0, 10],
      ])
      expect((await a.get('v')).usage).toBe(0)
      expect((await b.get('u')).usage).toBe(1)
      const granted = await consumeAll([
        { quota: a, id: 'v', cost: 2 },
        { quota: b, id: 'other' },
      ])
      expect(granted).toMatchObject({ allowed: true, results: [{ usage: 2 }, { usage: 1 }] })
    })

    test('consumeAll through the saga path is all or nothing too, and says which items were rolled back or not tried', async (store) => {
      const saga = sagaOnly(store)
      const a = createQuota({ name: randomName('a'), store: saga, limit: 10 })
      const b = createQuota({ name: randomName('b'), store: saga, limit: 1 })
      await b.consume('u')
      const c = createQuota({ name: randomName('c'), store: saga, limit: 10 })
      const result = await consumeAll([
        { quota: a, id: 'v', cost: 3 },
        { quota: b, id: 'u' },
        { quota: c, id: 'w' },
      ])
      expect(result).toMatchObject({ allowed: false, refused: { index: 1, quota: b.name } })
      // A was granted and given back; C was never tried: each says so, at its usage after the call.
      expect(result.results.map((r) => [r.allowed, r.reason, r.usage])).toEqual([
        [false, 'rolled-back', 0],
        [false, 'limit', 1],
        [false, 'not-tried', 0],
      ])
      expect((await a.get('v')).usage).toBe(0)
      expect((await c.get('w')).usage).toBe(0)
    })

    test('a store fault in the middle of a consumeAll saga gives back what was granted, then rejects', async (store) => {
      const faulty = failingFrom(store, 2)
      const a = createQuota({ name: randomName('a'), store: faulty, limit: 10 })
      const b = createQuota({ name: randomName('b'), store: faulty, limit: 10 })
      await expect(
        consumeAll([
          { quota: a, id: 'v' },
          { quota: b, id: 'u' },
        ]),
      ).rejects.toSatisfy(StoreError.isInstance)
      const check = createQuota({ name: a.name, store, limit: 10 })
      expect((await check.get('v')).usage).toBe(0)
    })

    test('consumeAll with one idempotency key twice counts once', async (store) => {
      const a = createQuota({ name: randomName('a'), store, limit: 10 })
      const b = createQuota({ name: randomName('b'), store, limit: 10 })
      const items = [
        { quota: a, id: 'v' },
        { quota: b, id: 'u' },
      ]
      await consumeAll(items, { idempotencyKey: 'order-1' })
      expect(await consumeAll(items, { idempotencyKey: 'order-1' })).toMatchObject({ allowed: true, replayed: true })
      expect((await a.get('v')).usage).toBe(1)
      expect((await b.get('u')).usage).toBe(1)
    })

    for (const path of ['atomic', 'saga'] as const) {
      test(`transactAll (${path}) whose function throws gives every unit back, once, and a retry with its key is charged afresh`, async (store) => {
        const target = path === 'saga' ? sagaOnly(store) : store
        const compensated: string[] = []
        const hooks = { onCompensate: (e: { quota: string; result?: { allowed: boolean } }) => compensated.push(`${e.quota}:${e.result?.allowed}`) }
        const a = createQuota({ name: randomName('a'), store: target, limit: 5, hooks })
        const b = createQuota({ name: randomName('b'), store: target, limit: 5, hooks })
        const items = [
          { quota: a, id: 'v', cost: 2 },
          { quota: b, id: 'u' },
        ]
        const boom = new Error('insert failed')
        await expect(transactAll(items, () => Promise.reject(boom), { idempotencyKey: 'claim-1' })).rejects.toBe(boom)
        expect((await a.get('v')).usage).toBe(0)
        expect((await b.get('u')).usage).toBe(0)
        expect(compensated.sort()).toEqual([`${a.name}:true`, `${b.name}:true`])
        const retried = await transactAll(items, (r) => r, { idempotencyKey: 'claim-1' })
        expect(retried.replayed).toBeFalsy()
        expect((await a.get('v')).usage).toBe(2)
        expect((await b.get('u')).usage).toBe(1)
      })
    }

    test('transactAll refused by one quota throws QuotaExceededError naming it, runs nothing and changes nothing', async (store) => {
      const a = createQuota({ name: randomName('a'), store, limit: 5 })
      const b = createQuota({ name: randomName('b'), store, limit: 0 })
      let ran = false
      const error = await transactAll(
        [
          { quota: a, id: 'v' },
          { quota: b, id: 'u' },
        ],
        () => {
          ran = true
        },
      ).catch((e: unknown) => e)
      expect(QuotaExceededError.isInstance(error) && error.result.reason).toBe('limit')
      expect(String((error as Error).message)).toContain(b.name)
      expect(ran).toBe(false)
      expect((await a.get('v')).usage).toBe(0)
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
      const quotaOf = (n: string) => quotas.get(n) ?? quotas.set(n, createQuota({ name: n, store, limit: 1000 })).get(n)!
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
        hooks: { onConsume: explode, onExceeded: async () => Promise.reject(new Error('async hook failed')), onRefund: explode },
      })
      expect(await quota.consume('v')).toMatchObject({ allowed: true, usage: 1 })
      expect(await quota.consume('v')).toMatchObject({ allowed: false, usage: 1 })
      expect(await quota.refund('v')).toMatchObject({ allowed: true, usage: 0 })
    })

    test('a limit function returning null allows the call and counts nothing', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: (id) => (id === 'vip' ? null : 1) })
      for (let i = 0; i < 3; i++) {
        expect(await quota.consume('vip')).toMatchObject({ status: 'unlimited', allowed: true, usage: 0, limit: Infinity })
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
