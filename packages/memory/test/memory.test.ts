import { createQuota } from '@andromeda/core'
import { createMemoryStore, type MemoryEvictionEvent } from '@andromeda/memory'
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest'

const DAY_MS = 86_400_000

describe('createMemoryStore', () => {
  afterEach(() => vi.restoreAllMocks())

  it('a 30-day ttlMs expires at the right moment under an injected clock, with no TimeoutOverflowWarning', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    let now = Date.UTC(2026, 0, 1)
    const clock = () => now
    const quota = createQuota({
      name: 'monthly',
      store: createMemoryStore({ clock }),
      clock,
      limit: 2,
      ttlMs: 30 * DAY_MS,
    })
    expect(await quota.consume('k')).toMatchObject({ allowed: true, resetAt: now + 30 * DAY_MS })
    await quota.consume('k')
    now += 30 * DAY_MS - 1
    expect(await quota.consume('k')).toMatchObject({ allowed: false, usage: 2 })
    now += 1
    expect(await quota.consume('k')).toMatchObject({ allowed: true, usage: 1 })
    await new Promise((resolve) => setImmediate(resolve))
    process.off('warning', onWarning)
    expect(warnings).not.toContain('TimeoutOverflowWarning')
  })

  it('a period quota starts a fresh counter when the injected clock enters the next window', async () => {
    let now = Date.UTC(2026, 2, 31, 23, 59, 59, 999)
    const quota = createQuota({
      name: 'daily',
      store: createMemoryStore({ clock: () => now }),
      limit: 1,
      period: 'day',
      clock: () => now,
    })
    expect((await quota.consume('k')).allowed).toBe(true)
    expect((await quota.consume('k')).allowed).toBe(false)
    now += 1
    expect(await quota.consume('k')).toMatchObject({ allowed: true, usage: 1, resetAt: Date.UTC(2026, 3, 2) })
  })

  it('evicting a live counter because the store is full calls onEvict with its value', async () => {
    const evicted: MemoryEvictionEvent[] = []
    const store = createMemoryStore({ max: 2, onEvict: (e) => evicted.push(e) })
    await store.apply([{ key: 'a', delta: 5, max: 10, ifMissing: 'create' }])
    await store.apply([{ key: 'b', delta: 1, max: 10, ifMissing: 'create' }])
    await store.apply([{ key: 'c', delta: 1, max: 10, ifMissing: 'create' }])
    expect(evicted).toEqual([{ key: 'a', kind: 'counter', value: 5 }])
  })

  it('evicting a live counter without onEvict emits one process warning', async () => {
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const store = createMemoryStore({ max: 1 })
    for (const key of ['a', 'b', 'c']) await store.apply([{ key, delta: 1, max: 10, ifMissing: 'create' }])
    expect(emit).toHaveBeenCalledTimes(1)
    expect(String(emit.mock.calls[0]?.[0])).toMatch(/evicted a live counter/)
  })

  it('an expired counter leaves silently when evicted', async () => {
    let now = 0
    const evicted: MemoryEvictionEvent[] = []
    const store = createMemoryStore({ max: 1, clock: () => now, onEvict: (e) => evicted.push(e) })
    await store.apply([{ key: 'a', delta: 1, max: 10, ttlMs: 10, ifMissing: 'create' }])
    now = 10
    await store.apply([{ key: 'b', delta: 1, max: 10, ifMissing: 'create' }])
    expect(evicted).toEqual([])
  })

  it('rejects a max that is not a positive integer', () => {
    expect(() => createMemoryStore({ max: 0 })).toThrow(/max/)
  })

  it('says it is process-local and atomic only within the process', () => {
    expect(createMemoryStore().capabilities).toMatchObject({ shared: false, atomic: 'process' })
  })
})

describe('createMemoryStore close()', () => {
  it('is safe to call twice, and afterwards every call rejects with a StoreError', async () => {
    const store = createMemoryStore()
    await store.apply([{ key: 'k', delta: 1, max: 5, ifMissing: 'create' }])
    // The factory's concrete return type: close() needs no `?.` under strict; apply answers synchronously.
    expectTypeOf(store.close).toEqualTypeOf<() => Promise<void>>()
    expect(store.apply([{ key: 'k', delta: 0, ifMissing: 'create' }])).toMatchObject({ ok: true, values: [1] })
    await store.close()
    await store.close()
    await expect(store.get('k')).rejects.toMatchObject({ code: 'ERR_STORE' })
    await expect(store.apply([{ key: 'k', delta: 1, max: 5, ifMissing: 'create' }])).rejects.toMatchObject({
      code: 'ERR_STORE',
    })
    const quota = createQuota({ name: 'q', store, limit: 5 })
    await expect(quota.consume('k')).rejects.toMatchObject({ code: 'ERR_STORE' })
  })
})
