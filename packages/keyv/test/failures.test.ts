import { createQuota, StoreError } from '@andromeda/core'
import Keyv from 'keyv'
import { describe, expect, it } from 'vitest'
import { createKeyvStore } from '../src/index.js'
import { FlakyAdapter } from './flaky-adapter.js'

function setup(timeoutMs = 200) {
  const adapter = new FlakyAdapter()
  const keyv = new Keyv({ store: adapter })
  const store = createKeyvStore({ keyv, commandTimeoutMs: timeoutMs, shared: false })
  const quota = createQuota({ name: 'q', store, limit: 10 })
  return { adapter, keyv, store, quota }
}

const elapsed = async (fn: () => unknown): Promise<{ error?: unknown; ms: number }> => {
  const started = Date.now()
  const error = await Promise.resolve()
    .then(fn)
    .then(
      () => undefined,
      (e: unknown) => e,
    )
  return { error, ms: Date.now() - started }
}

describe('keyv failures become StoreErrors', () => {
  it('a read that throws is a StoreError, never a missing counter that gets created at 0', async () => {
    const { adapter, quota, store } = setup()
    await quota.consume('a', 4)
    adapter.getMode = 'throw'
    const failed = await elapsed(() => quota.consume('a'))
    expect(StoreError.isInstance(failed.error)).toBe(true)
    expect((failed.error as StoreError).retryable).toBe(true)
    adapter.getMode = 'ok'
    expect((await store.get(counterOf('a')))?.value).toBe(4)
  })

  it('a consume whose write answers false is rejected and not counted', async () => {
    const { adapter, quota } = setup()
    await quota.consume('a', 2)
    adapter.setMode = 'false'
    const failed = await elapsed(() => quota.consume('a'))
    expect(StoreError.isInstance(failed.error)).toBe(true)
    expect((failed.error as StoreError).retryable).toBe(false)
    adapter.setMode = 'ok'
    expect((await quota.get('a')).usage).toBe(2)
  })

  it('a refund whose write throws is never reported as done', async () => {
    const { adapter, quota } = setup()
    await quota.consume('a', 3)
    adapter.setMode = 'throw'
    await expect(quota.refund('a', 1)).rejects.toSatisfy(StoreError.isInstance)
    adapter.setMode = 'ok'
    expect((await quota.get('a')).usage).toBe(3)
  })

  it('a write that never answers rejects within commandTimeoutMs, and the key stays held until it lands', async () => {
    const { adapter, store } = setup(100)
    const key = '{q:a}:usage'
    adapter.setMode = 'hang'
    const first = await elapsed(() => store.apply([{ key, delta: 1, max: 10, ifMissing: 'create' }]))
    expect(StoreError.isInstance(first.error)).toBe(true)
    expect((first.error as StoreError).retryable).toBe(false)
    expect(first.ms).toBeLessThan(1_000)
    adapter.setMode = 'ok'
    // The next call on the key waits for the late write instead of reading under it.
    const second = store.apply([{ key, delta: 1, max: 10, ifMissing: 'create' }])
    await new Promise((resolve) => setTimeout(resolve, 50))
    adapter.held.shift()?.()
    expect(await second).toMatchObject({ ok: true, values: [2] })
  })

  it('a key held by a call that never settles makes later calls reject in bounded time', async () => {
    const adapter = new FlakyAdapter()
    const store = createKeyvStore({ keyv: new Keyv({ store: adapter }), commandTimeoutMs: 50, lockWaitTimeoutMs: 100 })
    adapter.setMode = 'hang'
    await expect(store.apply([{ key: 'k', delta: 1, max: 5, ifMissing: 'create' }])).rejects.toSatisfy(
      StoreError.isInstance,
    )
    const later = await elapsed(() => store.apply([{ key: 'k', delta: 1, max: 5, ifMissing: 'create' }]))
    expect(StoreError.isInstance(later.error)).toBe(true)
    expect((later.error as StoreError).retryable).toBe(true)
    expect(later.ms).toBeLessThan(1_000)
  })

  it("an error event from Keyv's adapter during a call fails that call", async () => {
    const { adapter, quota } = setup(5_000)
    adapter.getMode = 'emit'
    const failed = await elapsed(() => quota.consume('a'))
    expect(StoreError.isInstance(failed.error)).toBe(true)
    expect((failed.error as Error).message).toContain('pool error')
    expect(failed.ms).toBeLessThan(1_000)
  })

  it('a multi-key apply whose second write fails puts the first counter back', async () => {
    const { adapter, store } = setup()
    await store.apply([{ key: '{g}:a', delta: 1, max: 10, ifMissing: 'create' }])
    adapter.setMode = 'throw'
    adapter.failSetNumber = 2 // this apply's writes are sets 2 and 3 from the start: fail its second
    await expect(
      store.apply([
        { key: '{g}:a', delta: 1, max: 10, ifMissing: 'create' },
        { key: '{g}:b', delta: 1, max: 10, ifMissing: 'create' },
      ]),
    ).rejects.toSatisfy(StoreError.isInstance)
    adapter.setMode = 'ok'
    // The roll-back holds the keys, so this read-modify-write sees the restored value.
    expect(await store.apply([{ key: '{g}:a', delta: 0, max: 10, ifMissing: 'create' }])).toMatchObject({
      ok: true,
      values: [1],
    })
    expect(await store.get('{g}:b')).toBeUndefined()
  })

  it('an idempotent consume whose record cannot be saved is rejected and leaves no units behind', async () => {
    const { adapter, quota } = setup()
    adapter.setMode = 'throw'
    adapter.failSetNumber = 2 // the counter write succeeds, the record write fails
    await expect(quota.consume('a', 1, { idempotencyKey: 'order-1' })).rejects.toSatisfy(StoreError.isInstance)
    adapter.setMode = 'ok'
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect((await quota.get('a')).usage).toBe(0)
    expect(await quota.consume('a', 1, { idempotencyKey: 'order-1' })).toMatchObject({ allowed: true, usage: 1 })
  })

  it('a closed store rejects with StoreError', async () => {
    const { store } = setup()
    // The factory's concrete return type: close() needs no `?.` under strict.
    await store.close()
    await store.close()
    await expect(store.apply([{ key: 'k', delta: 1, ifMissing: 'create' }])).rejects.toSatisfy(StoreError.isInstance)
  })
})

function counterOf(id: string): string {
  return `{q:${id}}:usage`
}

describe('createKeyvStore options', () => {
  it('refuses unknown option keys, naming the key and the nearest option', () => {
    expect(() => createKeyvStore({ keyv: new Keyv(), commandTimeout: 100 } as never)).toThrow(
      /commandTimeout: .*did you mean 'commandTimeoutMs'/,
    )
    expect(() => createKeyvStore({ keyv: new Keyv(), tabel: 'x' } as never)).toThrow(/tabel/)
  })

  it('refuses commandTimeoutMs and lockWaitTimeoutMs of 2^31 ms, naming the largest value; 2^31 - 1 is accepted', () => {
    expect(() => createKeyvStore({ keyv: new Keyv(), commandTimeoutMs: 2 ** 31 })).toThrow(
      /commandTimeoutMs.*2\^31 - 1/,
    )
    expect(() => createKeyvStore({ keyv: new Keyv(), lockWaitTimeoutMs: 2 ** 31 })).toThrow(
      /lockWaitTimeoutMs.*2\^31 - 1/,
    )
    expect(() =>
      createKeyvStore({ keyv: new Keyv(), commandTimeoutMs: 2 ** 31 - 1, lockWaitTimeoutMs: 2 ** 31 - 1 }),
    ).not.toThrow()
  })

  it('with a clock, a quota created without one reads it: resetAt comes from the fake date', async () => {
    const now = Date.UTC(2025, 0, 15, 12, 0)
    const store = createKeyvStore({ keyv: new Keyv(), clock: () => now })
    const quota = createQuota({ name: 'api', store, limit: 5, period: 'day' })
    expect(await quota.consume('u')).toMatchObject({ allowed: true, resetAt: Date.UTC(2025, 0, 16) })
    expect(() => createQuota({ name: 'api', store, limit: 5, clock: Date.now })).toThrow(/clock/)
  })

  it('a per-minute quota on the default Map, one consume per simulated minute for 120 minutes, keeps a few entries', async () => {
    let now = Date.UTC(2025, 2, 1)
    const keyv = new Keyv()
    const quota = createQuota({
      name: 'api',
      store: createKeyvStore({ keyv, clock: () => now }),
      limit: 5,
      period: 'minute',
    })
    for (let minute = 0; minute < 120; minute++) {
      await quota.consume('u')
      now += 60_000
    }
    expect((keyv.store as Map<unknown, unknown>).size).toBeLessThanOrEqual(4)
  })

  it('500 ids on a 1 s TTL quota on the default Map: once they expired, later calls reclaim them', async () => {
    let now = Date.UTC(2025, 2, 1)
    const keyv = new Keyv()
    const quota = createQuota({
      name: 'api',
      store: createKeyvStore({ keyv, clock: () => now }),
      limit: 5,
      ttlMs: 1000,
    })
    for (let i = 0; i < 500; i++) await quota.consume(`id-${i}`)
    now += 2000
    // Each call deletes a few expired entries along with its own work.
    for (let i = 0; i < 100; i++) await quota.consume('after')
    expect((keyv.store as Map<unknown, unknown>).size).toBeLessThanOrEqual(4)
  })
})
