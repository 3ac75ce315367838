import { consumeAll, createQuota, QuotaExceededError, StoreError, transactAll } from '@andromeda/core'
import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { randomName } from './random.js'
import { storeTest } from './store-test.js'
import { failingFrom, sagaOnly } from './store-views.js'

/**
 * transact, consumeAll and transactAll on any store: all or nothing on the atomic and the saga path, give-backs after a failure or a store fault.
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
export function transactionTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  // Only it(...) cases, one per behaviour: a long block that reads as a list.
  describe(`quota engine on ${options.name}`, () => {
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
        const hooks = {
          onCompensate: (e: { quota: string; result?: { allowed: boolean } }) =>
            compensated.push(`${e.quota}:${e.result?.allowed}`),
        }
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
  })
}
