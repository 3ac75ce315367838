import { consumeAll, createQuota, transactAll } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { describe, expect, it } from 'vitest'

// Cases found by trying to break the library from the outside, kept as plain tests.

describe('giving units back when a counter vanished meanwhile', () => {
  it('transactAll whose function outlives one short-lived counter still gives back every other unit, and clears its record', async () => {
    let now = Date.UTC(2026, 0, 1)
    const clock = () => now
    const store = createMemoryStore({ clock })
    const burst = createQuota({ name: 'burst', store, clock, limit: 10, ttlMs: 300 })
    const monthly = createQuota({ name: 'monthly', store, clock, limit: 1000 })
    const items = [
      { quota: burst, id: 'k' },
      { quota: monthly, id: 'k' },
    ]
    const failure = new Error('handler failed')
    await expect(
      transactAll(
        items,
        () => {
          now += 500 // the burst counter expires while the function runs
          throw failure
        },
        { idempotencyKey: 'req-1' },
      ),
    ).rejects.toBe(failure)
    expect((await monthly.get('k')).usage).toBe(0)
    const retried = await consumeAll(items, { idempotencyKey: 'req-1' })
    expect(retried.replayed).toBeFalsy()
    expect((await monthly.get('k')).usage).toBe(1)
  })

  it('transact whose counter expired while its function ran clears its record, so a retry is charged afresh', async () => {
    let now = Date.UTC(2026, 0, 1)
    const clock = () => now
    const quota = createQuota({ name: 'q', store: createMemoryStore({ clock }), clock, limit: 5, ttlMs: 100 })
    await expect(
      quota.transact(
        'v',
        1,
        () => {
          now += 200
          throw new Error('x')
        },
        { idempotencyKey: 'req-1' },
      ),
    ).rejects.toThrow('x')
    const retried = await quota.consume('v', 1, { idempotencyKey: 'req-1' })
    expect(retried).toMatchObject({ status: 'granted', allowed: true, usage: 1 })
  })
})

describe('an idempotency key reused for a different request', () => {
  it('consume with another cost is evaluated afresh, never answered with the other request result', async () => {
    const quota = createQuota({ name: 'q', store: createMemoryStore(), limit: 100 })
    await quota.consume('i', 5, { idempotencyKey: 'k' })
    const other = await quota.consume('i', 7, { idempotencyKey: 'k' })
    expect(other).toMatchObject({ status: 'granted', allowed: true, usage: 12 })
    expect(await quota.consume('i', 5, { idempotencyKey: 'k' })).toMatchObject({ status: 'replayed', usage: 5 })
  })

  it('consumeAll with other items is evaluated afresh, and never reports an item as charged that was not', async () => {
    const store = createMemoryStore()
    const q = createQuota({ name: 'q', store, limit: 50 })
    const q2 = createQuota({ name: 'q2', store, limit: 50 })
    await consumeAll([{ quota: q, id: 'i', cost: 1 }], { idempotencyKey: 'k' })
    const other = await consumeAll(
      [
        { quota: q, id: 'i', cost: 3 },
        { quota: q2, id: 'i', cost: 3 },
      ],
      { idempotencyKey: 'k' },
    )
    expect(other.replayed).toBeFalsy()
    expect(other.results.map((r) => r.usage)).toEqual([4, 3])
    expect((await q2.get('i')).usage).toBe(3)
  })
})

describe('an idempotency key reused for a different request on the saga path', () => {
  it('consumeAll across two stores with other items is evaluated afresh for every item', async () => {
    const q1 = createQuota({ name: 'q1', store: createMemoryStore(), limit: 10 })
    const q2 = createQuota({ name: 'q2', store: createMemoryStore(), limit: 10 })
    await consumeAll(
      [
        { quota: q1, id: 'x' },
        { quota: q2, id: 'y' },
      ],
      { idempotencyKey: 'K' },
    )
    const other = await consumeAll(
      [
        { quota: q1, id: 'x' },
        { quota: q2, id: 'z' },
      ],
      { idempotencyKey: 'K' },
    )
    expect(other.results.map((r) => r.status)).toEqual(['granted', 'granted'])
    expect((await q1.get('x')).usage).toBe(2)
  })
})

describe('a give-back never lands on a counter created after the one that granted the units', () => {
  it('transact whose ttl counter expired and was re-created while its function ran leaves the new counter alone', async () => {
    let now = Date.UTC(2026, 0, 1)
    const clock = () => now
    const rows: string[] = []
    const quota = createQuota({
      name: 'lu',
      store: createMemoryStore({ clock }),
      clock,
      limit: 1,
      ttlMs: 100,
      loadUsage: () => rows.length,
    })
    await expect(
      quota.transact('v', 1, async () => {
        now += 150 // our counter expires
        if ((await quota.consume('v')).allowed) rows.push('other') // reloaded from the rows: 1 of 1
        throw new Error('insert failed')
      }),
    ).rejects.toThrow('insert failed')
    expect((await quota.get('v')).usage).toBe(1)
    expect((await quota.consume('v')).allowed).toBe(false)
  })

  it('transactAll on one store does the same for each ttl-bounded item', async () => {
    let now = Date.UTC(2026, 0, 1)
    const clock = () => now
    const store = createMemoryStore({ clock })
    const window = createQuota({ name: 'window', store, clock, limit: 1, ttlMs: 100 })
    const monthly = createQuota({ name: 'monthly', store, clock, limit: 10 })
    const items = [
      { quota: window, id: 'k' },
      { quota: monthly, id: 'k' },
    ]
    await expect(
      transactAll(items, async () => {
        now += 150
        expect((await window.consume('k')).allowed).toBe(true) // a new window counter
        throw new Error('x')
      }),
    ).rejects.toThrow('x')
    expect((await window.get('k')).usage).toBe(1)
    expect((await monthly.get('k')).usage).toBe(0)
  })
})
