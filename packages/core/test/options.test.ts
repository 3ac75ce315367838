import { describe, expect, it } from 'vitest'
import { createQuotaGate } from '../src/http/index.js'
import { checkOptionKeys, createQuota, createUsageSync, InvalidArgumentError, MAX_TIMER_MS } from '../src/index.js'
import { untouchableStore } from './stub-store.js'

/** The `InvalidArgumentError` `run` throws (synchronously or not); fails the test otherwise. */
async function invalid(run: () => unknown): Promise<InvalidArgumentError> {
  let thrown: unknown
  try {
    await run()
  } catch (error) {
    thrown = error
  }
  expect(thrown, 'an InvalidArgumentError').toSatisfy(InvalidArgumentError.isInstance)
  return thrown as InvalidArgumentError
}

const base = () => ({ name: 'q', store: untouchableStore(), limit: 5 })

describe('unknown option keys', () => {
  it("createQuota({ perod: 'day' }) is refused, naming the key and the nearest option", async () => {
    const error = await invalid(() => createQuota({ ...base(), perod: 'day' } as never))
    expect(error.argument).toBe('perod')
    expect(error.message).toContain("did you mean 'period'?")
  })

  it('nested options objects are checked too: lock, retry', async () => {
    expect((await invalid(() => createQuota({ ...base(), lock: { ttl: 10 } } as never))).argument).toBe('lock.ttl')
    expect((await invalid(() => createQuota({ ...base(), retry: { attempt: 2 } } as never))).argument).toBe(
      'retry.attempt',
    )
  })

  it('a key set to undefined is still a misspelling', async () => {
    expect((await invalid(() => createQuota({ ...base(), idempotencyTTLMs: undefined } as never))).argument).toBe(
      'idempotencyTTLMs',
    )
  })

  it('createUsageSync refuses an unknown key', async () => {
    const quota = createQuota(base())
    const error = await invalid(() =>
      createUsageSync({ quota, ids: () => [], persist: () => {}, intervalMs: 1000, interval: 5 } as never),
    )
    expect(error.argument).toBe('interval')
  })

  it('createQuotaGate refuses keys the adapter did not declare, and accepts those it did', async () => {
    const quota = createQuota(base())
    expect(
      (await invalid(() => createQuotaGate({ quota, id: () => 'u', onExceded: () => {} } as never))).argument,
    ).toBe('onExceded')
    expect(() => createQuotaGate({ quota, id: () => 'u', onExceeded: () => {} } as never, ['onExceeded'])).not.toThrow()
  })

  it('checkOptionKeys names no neighbour when none is near', async () => {
    const error = await invalid(() => checkOptionKeys('', { zzzzzz: 1 }, ['period', 'limit']))
    expect(error.message).not.toContain('did you mean')
    expect(error.message).toContain('known options: period, limit')
  })
})

describe('durations: timers are bounded at 2^31 - 1 ms, refused above at creation naming the largest value', () => {
  const tooLong = 2 ** 31
  it.each([
    ['lock.ttlMs', () => createQuota({ ...base(), lock: { ttlMs: tooLong } })],
    ['lock.retryDelayMs', () => createQuota({ ...base(), lock: { retryDelayMs: tooLong } })],
    ['timeoutMs', () => createQuotaGate({ quota: createQuota(base()), id: () => 'u', timeoutMs: tooLong })],
    [
      'intervalMs',
      () => createUsageSync({ quota: createQuota(base()), ids: () => [], persist: () => {}, intervalMs: tooLong }),
    ],
  ])('%s of 2^31 ms', async (argument, create) => {
    const error = await invalid(create)
    expect(error.argument).toBe(argument)
    expect(error.message).toContain(String(MAX_TIMER_MS))
  })

  it.each([
    ['lock.ttlMs', () => createQuota({ ...base(), lock: { ttlMs: MAX_TIMER_MS } })],
    ['lock.retryDelayMs', () => createQuota({ ...base(), lock: { retryDelayMs: MAX_TIMER_MS } })],
    ['timeoutMs', () => createQuotaGate({ quota: createQuota(base()), id: () => 'u', timeoutMs: MAX_TIMER_MS })],
  ])('%s of 2^31 - 1 ms is accepted', (_argument, create) => {
    expect(create).not.toThrow()
  })

  it('options without a timer accept 2^31 ms and more: ttlMs, idempotencyTtlMs, holdMs, limitCacheTtlMs, retry.budgetMs', () => {
    expect(() =>
      createQuota({
        ...base(),
        ttlMs: tooLong,
        idempotencyTtlMs: tooLong,
        holdMs: tooLong,
        limit: () => 5,
        limitCacheTtlMs: tooLong,
        retry: { budgetMs: tooLong },
      }),
    ).not.toThrow()
  })
})

describe('one clock per quota', () => {
  it("a quota without a clock adopts its store's injected one", () => {
    const clock = () => Date.UTC(2025, 0, 15)
    expect(createQuota({ ...base(), store: { ...untouchableStore(), clock } }).clock).toBe(clock)
  })

  it("a quota whose clock disagrees with its store's injected one is refused, naming clock", async () => {
    const store = { ...untouchableStore(), clock: () => Date.UTC(2025, 0, 15) }
    expect((await invalid(() => createQuota({ ...base(), store, clock: () => Date.UTC(2026, 0, 15) }))).argument).toBe(
      'clock',
    )
    // The same reading (another function) is one time source.
    expect(() => createQuota({ ...base(), store, clock: () => Date.UTC(2025, 0, 15) })).not.toThrow()
  })

  it('a quota and a store without clocks read Date.now', () => {
    expect(createQuota(base()).clock).toBe(Date.now)
  })
})

describe('user functions: awaited, or a wrong-typed answer is an InvalidArgumentError naming the option', () => {
  it.each([
    ['limit', { limit: async () => '5' }],
    ['ttlMs', { ttlMs: async () => '1000' }],
    ['cost', { cost: async () => '2' }],
    // A clock must answer epoch ms now, not a promise of it (read before the store for a TTL).
    ['clock', { ttlMs: 1000, clock: () => Promise.resolve(1) }],
  ])('%s answering the wrong type, before the store is touched', async (argument, options) => {
    const quota = createQuota({ ...base(), ...(options as object) } as never)
    const error = await quota.consume('u').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toSatisfy(InvalidArgumentError.isInstance)
    expect((error as InvalidArgumentError).argument).toBe(argument)
  })
})
