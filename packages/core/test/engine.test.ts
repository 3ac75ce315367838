import { describe, expect, it } from 'vitest'
import {
  createQuota,
  InvalidArgumentError,
  LoadError,
  LockTimeoutError,
  reserveAll,
  transactAll,
} from '../src/index.js'
import { untouchableStore } from './stub-store.js'

const argumentOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    return InvalidArgumentError.isInstance(error) ? error.argument : `not an InvalidArgumentError: ${String(error)}`
  }
  return 'did not throw'
}

/** The `option` and `cause` of the LoadError `call` rejects with, or what it answered instead. */
async function clockFailure(call: () => Promise<unknown>): Promise<unknown> {
  const error = await call().then(
    (answer) => ({ answered: answer }),
    (e: unknown) => e,
  )
  return LoadError.isInstance(error) ? { option: error.option, cause: error.cause } : error
}

describe('createQuota validates constant options synchronously', () => {
  const store = untouchableStore()
  const base = { name: 'q', store, limit: 5 }

  it.each([
    ['name', { ...base, name: '' }],
    ['name', { ...base, name: 42 }],
    ['store', { ...base, store: {} }],
    ['limit', { ...base, limit: undefined }],
    ['limit', { ...base, limit: -1 }],
    ['limit', { ...base, limit: 1.5 }],
    ['ttlMs', { ...base, ttlMs: 0 }],
    ['ttlMs', { ...base, ttlMs: 2.5 }],
    ['period', { ...base, period: 'fortnight' }],
    ['onStoreError', { ...base, onStoreError: 'ignore' }],
    ['lock.ttlMs', { ...base, lock: { ttlMs: -5 } }],
    ['hooks.onConsume', { ...base, hooks: { onConsume: 'yes' } }],
    ['loadUsage', { ...base, loadUsage: 3 }],
  ])('names %s', (argument, options) => {
    expect(argumentOf(() => createQuota(options as never))).toBe(argument)
    expect(store.calls).toEqual([])
  })
})

describe('calls with bad input never touch the store', () => {
  it('rejects bad ids, costs and idempotency keys before any store call', async () => {
    const store = untouchableStore()
    const quota = createQuota({ name: 'q', store, limit: 5 })
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['id', () => quota.consume('')],
      ['cost', () => quota.consume('v', -1)],
      ['cost', () => quota.refund('v', 0.5)],
      ['idempotencyKey', () => quota.consume('v', 1, { idempotencyKey: '' })],
      ['usage', () => quota.set('v', -3)],
      ['fn', () => quota.transact('v', 1, 'nope' as never)],
    ]
    for (const [argument, call] of cases) {
      const error = await call().catch((e: unknown) => e)
      expect(InvalidArgumentError.isInstance(error) && error.argument).toBe(argument)
    }
    expect(store.calls).toEqual([])
  })
})

describe('the load path', () => {
  it('gives up with LockTimeoutError when another process holds the loader lock too long', async () => {
    const store = untouchableStore({
      apply: async () => ({ ok: false, index: 0, reason: 'missing', values: [undefined] }),
      acquireLock: async () => false,
      get: async () => undefined,
    })
    const quota = createQuota({ name: 'q', store, limit: 5, loadUsage: () => 0, lock: { retries: 3, retryDelayMs: 1 } })
    const error = await quota.consume('v').catch((e: unknown) => e)
    expect(LockTimeoutError.isInstance(error)).toBe(true)
    // The counter and the wait are fields: no need to read them out of the message.
    expect(error).toMatchObject({ key: '{q:v}:usage', waitedMs: 3 })
  })

  it('an aborted signal stops a caller waiting for the loader lock', async () => {
    const store = untouchableStore({
      apply: async () => ({ ok: false, index: 0, reason: 'missing', values: [undefined] }),
      acquireLock: async () => false,
      get: async () => undefined,
    })
    const quota = createQuota({
      name: 'q',
      store,
      limit: 5,
      loadUsage: () => 0,
      lock: { retries: 1000, retryDelayMs: 50 },
    })
    const controller = new AbortController()
    const pending = quota.consume('v', 1, { signal: controller.signal })
    setTimeout(() => controller.abort(new Error('client went away')), 20)
    await expect(pending).rejects.toThrow('client went away')
  })

  it('a loadUsage that returns a bad value is a LoadError and seeds nothing', async () => {
    const store = untouchableStore({
      apply: async () => ({ ok: false, index: 0, reason: 'missing', values: [undefined] }),
      acquireLock: async () => true,
      releaseLock: async () => true,
      get: async () => undefined,
    })
    const quota = createQuota({ name: 'q', store, limit: 5, loadUsage: () => -2 })
    await expect(quota.consume('v')).rejects.toMatchObject({ code: 'ERR_LOAD' })
    expect(store.calls).not.toContain('seed')
  })
})

describe('onStoreError', () => {
  const down = () =>
    untouchableStore({
      apply: async () => {
        throw new Error('ECONNREFUSED')
      },
    })

  it("'throw' (default) rejects with a StoreError carrying the cause", async () => {
    const quota = createQuota({ name: 'q', store: down(), limit: 5 })
    await expect(quota.consume('v')).rejects.toMatchObject({ code: 'ERR_STORE', cause: { message: 'ECONNREFUSED' } })
  })

  it("'deny' resolves a refusal with reason store", async () => {
    const quota = createQuota({ name: 'q', store: down(), limit: 5, onStoreError: 'deny' })
    expect(await quota.consume('v')).toMatchObject({ allowed: false, reason: 'store' })
  })

  it("'allow' resolves allowed and degraded, and reports the fault to onError", async () => {
    const errors: unknown[] = []
    const quota = createQuota({
      name: 'q',
      store: down(),
      limit: 5,
      onStoreError: 'allow',
      hooks: { onError: (e) => errors.push(e.error) },
    })
    expect(await quota.consume('v')).toMatchObject({ status: 'degraded', allowed: true })
    expect(errors).toHaveLength(1)
  })
})

describe('option functions and odd options', () => {
  it('a cost or ttlMs function that throws is a LoadError naming the option, and the store is untouched', async () => {
    const store = untouchableStore()
    const boom = () => {
      throw new Error('db down')
    }
    const costly = createQuota({ name: 'q', store, limit: 5, cost: boom })
    await expect(costly.consume('v')).rejects.toMatchObject({
      code: 'ERR_LOAD',
      option: 'cost',
      message: expect.stringContaining('cost'),
    })
    const timed = createQuota({ name: 'q', store, limit: 5, ttlMs: boom })
    await expect(timed.consume('v')).rejects.toMatchObject({
      code: 'ERR_LOAD',
      option: 'ttlMs',
      message: expect.stringContaining('ttlMs'),
    })
    expect(store.calls).toEqual([])
  })

  it('a clock that does not return epoch ms is an InvalidArgumentError naming clock, before the store is touched', async () => {
    const store = untouchableStore()
    // Quotas that use time (a TTL or a period) read their clock before every call.
    const timed = [{ ttlMs: 60_000 }, { period: 'day' as const }, { ttlMs: () => 60_000 }]
    for (const bad of [Number.NaN, 'abc', -1, 1.5]) {
      for (const options of timed) {
        const quota = createQuota({ name: 'q', store, limit: 5, clock: () => bad as number, ...options })
        const error = await quota.consume('v').catch((e: unknown) => e)
        expect(InvalidArgumentError.isInstance(error) && error.argument).toBe('clock')
      }
    }
    expect(store.calls).toEqual([])
  })

  it('a clock that throws is a LoadError naming clock, with its error as the cause, before the store is touched', async () => {
    const store = untouchableStore()
    const broken = new Error('time source down')
    const clock = () => {
      throw broken
    }
    const timed = [{ ttlMs: 60_000 }, { period: 'day' as const }, { ttlMs: () => 60_000 }]
    for (const options of timed) {
      const quota = createQuota({ name: 'q', store, limit: 5, clock, ...options })
      for (const call of [() => quota.consume('v'), () => quota.refund('v'), () => quota.get('v')]) {
        expect(await clockFailure(call)).toEqual({ option: 'clock', cause: broken })
      }
    }
    // A quota that uses no time reads its clock for a hold's end: before the store is touched too,
    // so a failing clock never leaves units held.
    const timeless = createQuota({ name: 'q', store, limit: 5, clock })
    const work = () => 'never run'
    for (const call of [
      () => timeless.reserve('v'),
      () => timeless.transact('v', 1, work),
      () => reserveAll([{ quota: timeless, id: 'v' }]),
      () => transactAll([{ quota: timeless, id: 'v' }], work),
    ]) {
      expect(await clockFailure(call)).toEqual({ option: 'clock', cause: broken })
    }
    expect(store.calls).toEqual([])
  })

  it('a misspelled hook or a lock that is not an object is refused when the quota is created', () => {
    const store = untouchableStore()
    expect(
      argumentOf(() => createQuota({ name: 'q', store, limit: 5, hooks: { onConsumed: () => {} } as never })),
    ).toBe('hooks.onConsumed')
    expect(argumentOf(() => createQuota({ name: 'q', store, limit: 5, lock: 'abc' as never }))).toBe('lock')
  })

  it('a loadUsage that never answers fails with a LoadError once the lock lifetime has passed', async () => {
    const store = untouchableStore({
      apply: async () => ({ ok: false, index: 0, reason: 'missing', values: [undefined] }),
      acquireLock: async () => true,
      releaseLock: async () => true,
      get: async () => undefined,
    })
    const quota = createQuota({
      name: 'q',
      store,
      limit: 5,
      loadUsage: () => new Promise<number>(() => {}),
      lock: { ttlMs: 50 },
    })
    await expect(quota.consume('v')).rejects.toMatchObject({
      code: 'ERR_LOAD',
      message: expect.stringContaining('lock.ttlMs'),
    })
  })
})
