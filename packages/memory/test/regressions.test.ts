import { consumeAll, createQuota, reserveAll, transactAll } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { sagaOnly } from '@andromeda/store-test-suite'
import { describe, expect, it } from 'vitest'

// Shrunk counter-examples of the model-based property suite (@andromeda/store-test-suite),
// kept as plain tests so each fault stays fixed.

function manualClock() {
  let now = Date.UTC(2026, 0, 1)
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
}

describe('consumeAll saga (found by the property suite)', () => {
  it('a refused saga reports an item it never reached as not granted, against its own limit', async () => {
    const store = sagaOnly(createMemoryStore())
    const full = createQuota({ name: 'full', store, limit: 0 })
    const free = createQuota({ name: 'free', store, limit: 5 })
    await free.consume('a', 2)
    const result = await consumeAll([
      { quota: full, id: 'a', cost: 1 },
      { quota: free, id: 'a', cost: 0 },
    ])
    expect(result).toMatchObject({ allowed: false, refused: { index: 0, quota: 'full', reason: 'limit' } })
    // It used to be the placeholder of an unlimited result ({ allowed: true, limit: Infinity }).
    expect(result.results[1]).toMatchObject({ status: 'refused', allowed: false, usage: 2, limit: 5, remaining: 3 })
  })

  it('a refused saga reports a rolled-back item at its usage after the rollback', async () => {
    const store = sagaOnly(createMemoryStore())
    const a = createQuota({ name: 'a', store, limit: 5 })
    const b = createQuota({ name: 'b', store, limit: 0 })
    const result = await consumeAll([
      { quota: a, id: 'v', cost: 2 },
      { quota: b, id: 'v', cost: 1 },
    ])
    expect(result.allowed).toBe(false)
    expect(result.results[0]).toMatchObject({ allowed: false, usage: 0, remaining: 5 })
    expect((await a.get('v')).usage).toBe(0)
  })

  it('a retried saga whose later step is refused does not give back the units of a replayed step', async () => {
    const clock = manualClock()
    const store = sagaOnly(createMemoryStore({ clock: clock.now }))
    const a = createQuota({ name: 'a', store, limit: 5, clock: clock.now })
    // b's idempotency records lapse sooner than a's.
    const b = createQuota({ name: 'b', store, limit: 1, clock: clock.now, idempotencyTtlMs: 1_000 })
    const items = [
      { quota: a, id: 'v', cost: 2 },
      { quota: b, id: 'v', cost: 1 },
    ]
    expect(await consumeAll(items, { idempotencyKey: 'order-1' })).toMatchObject({ allowed: true })
    clock.advance(1_000)
    // The retry replays a's step (its record is live) and evaluates b's afresh: b is full.
    expect(await consumeAll(items, { idempotencyKey: 'order-1' })).toMatchObject({
      allowed: false,
      refused: { index: 1 },
    })
    // The 2 units of the first, granted call stay counted, and its record still replays.
    expect((await a.get('v')).usage).toBe(2)
    await b.refund('v')
    const retried = await consumeAll(items, { idempotencyKey: 'order-1' })
    expect(retried).toMatchObject({
      allowed: true,
      results: [
        { status: 'replayed', usage: 2 },
        { status: 'granted', usage: 1 },
      ],
    })
    expect((await a.get('v')).usage).toBe(2)
  })
})

describe('hooks (found by the property suite)', () => {
  it('a refund on an id without a quota (limit null) is told to onRefund, not onConsume', async () => {
    const seen: string[] = []
    const quota = createQuota({
      name: 'vip',
      store: createMemoryStore(),
      limit: () => null,
      hooks: { onConsume: (e) => void seen.push(`consume ${e.id}`), onRefund: (e) => void seen.push(`refund ${e.id}`) },
    })
    expect(await quota.refund('vip', 0)).toMatchObject({ status: 'unlimited', allowed: true })
    expect(seen).toEqual(['refund vip'])
  })
})

describe('idempotent replays (found by the property suite)', () => {
  it('a replay later in the counter lifetime reports the reset time of the recorded call', async () => {
    const clock = manualClock()
    const quota = createQuota({
      name: 'q',
      store: createMemoryStore({ clock: clock.now }),
      limit: 5,
      ttlMs: 1_000,
      clock: clock.now,
    })
    const first = await quota.consume('a', 1, { idempotencyKey: 'k' })
    expect(first.resetAt).toBe(clock.now() + 1_000)
    clock.advance(1)
    // It used to drift to clock + 1_000 (the recorded ttlMs taken from the replay's now).
    expect(await quota.consume('a', 1, { idempotencyKey: 'k' })).toEqual({ ...first, status: 'replayed' })
  })
})

describe('irreversible work on holds', () => {
  it('transactAll irreversible whose function throws keeps every unit, after the hold time too', async () => {
    const clock = manualClock()
    const store = createMemoryStore({ clock: clock.now })
    for (const path of [store, sagaOnly(store)]) {
      const qa = createQuota({ name: `a-${path === store}`, store: path, limit: 5, clock: clock.now, holdMs: 1_000 })
      const qb = createQuota({ name: `b-${path === store}`, store: path, limit: 5, clock: clock.now, holdMs: 1_000 })
      await expect(
        transactAll(
          [
            { quota: qa, id: 'v', cost: 2 },
            { quota: qb, id: 'v', cost: 1 },
          ],
          () => {
            throw new Error('sent already')
          },
          { irreversible: true },
        ),
      ).rejects.toThrow('sent already')
      clock.advance(5_000)
      expect((await qa.get('v')).usage).toBe(2)
      expect((await qb.get('v')).usage).toBe(1)
    }
  })
})

describe('a hold that went with its counter', () => {
  it('reserveAll commit after the counter was reset and reloaded counts the units once (the system of record has them)', async () => {
    let rows = 0
    const vouchers = createQuota({ name: 'voucher', store: createMemoryStore(), limit: 10, loadUsage: () => rows })
    const held = await reserveAll([{ quota: vouchers, id: 'V' }])
    rows++ // the work is recorded
    await vouchers.reset('V')
    expect((await vouchers.get('V')).usage).toBe(1) // reloaded from the rows
    await held.commit()
    expect((await vouchers.get('V')).usage).toBe(1)
  })

  it('transact whose hold lapsed on a live counter of a quota without loadUsage charges the units again', async () => {
    const clock = manualClock()
    const quota = createQuota({
      name: 'q',
      store: createMemoryStore({ clock: clock.now }),
      limit: 5,
      clock: clock.now,
      holdMs: 1_000,
    })
    await quota.transact('v', 2, async () => {
      clock.advance(2_000)
      expect((await quota.get('v')).usage).toBe(0) // the lapsed hold is back
    })
    expect((await quota.get('v')).usage).toBe(2)
  })
})
