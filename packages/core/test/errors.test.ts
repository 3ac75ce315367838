import { describe, expect, it, vi } from 'vitest'
import {
  AndromedaError,
  consumeAll,
  createQuota,
  InvalidArgumentError,
  LoadError,
  QuotaExceededError,
  StoreError,
  transactAll,
} from '../src/index.js'
import { untouchableStore } from './stub-store.js'

describe('errors', () => {
  it('carry a stable code and an argument name', () => {
    const error = new InvalidArgumentError('cost', 'must be a safe integer >= 0, got 0.5')
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', argument: 'cost', name: 'InvalidArgumentError' })
    expect(new StoreError('down', { retryable: true })).toMatchObject({ code: 'ERR_STORE', retryable: true })
  })

  it('keep their details in fields, so no caller parses a message', async () => {
    const error = new InvalidArgumentError('cost', 'must be a safe integer >= 0, got 0.5')
    expect(error).toMatchObject({ argument: 'cost', detail: 'must be a safe integer >= 0, got 0.5' })
    expect(error.message).toBe('cost: must be a safe integer >= 0, got 0.5')
    // consumeAll names the item, and keeps the same detail.
    const quota = createQuota({ name: 'q', store: untouchableStore(), limit: 5 })
    const bad = await consumeAll([
      { quota, id: 'a' },
      { quota, id: 'b', cost: -1 },
    ]).catch((e: unknown) => e)
    expect(bad).toMatchObject({ argument: 'items[1].cost', detail: 'must be a safe integer >= 0, got -1' })
    const refused = { status: 'refused', allowed: false, usage: 5, limit: 5, remaining: 0, reason: 'limit' } as const
    expect(new QuotaExceededError('voucher', refused)).toMatchObject({ quota: 'voucher', result: refused })
    expect(new LoadError('the limit function failed: x', { option: 'limit' }).option).toBe('limit')
    expect(new LoadError('went missing').option).toBeUndefined()
  })

  it('transactAll names the refused quota in a field', async () => {
    // One atomic apply that refuses the second item for its limit.
    const store = untouchableStore({ apply: () => ({ ok: false, index: 1, reason: 'limit', values: [0, 3] }) })
    const first = createQuota({ name: 'first', store, limit: 5 })
    const second = createQuota({ name: 'second', store, limit: 3 })
    const error = await transactAll(
      [
        { quota: first, id: 'a' },
        { quota: second, id: 'a' },
      ],
      () => 'ran',
    ).catch((e: unknown) => e)
    expect(QuotaExceededError.isInstance(error)).toBe(true)
    expect(error).toMatchObject({ quota: 'second', result: { reason: 'limit', usage: 3 } })
  })

  it('isInstance recognises errors from another loaded copy of core, where instanceof fails', async () => {
    vi.resetModules()
    // A query string makes the module loader evaluate errors.ts a second time: a second copy.
    const other = (await import('../src/errors.js?copy' as string)) as typeof import('../src/errors.js')
    const foreign = new other.StoreError('down', { retryable: false })
    expect(foreign instanceof StoreError).toBe(false)
    expect(StoreError.isInstance(foreign)).toBe(true)
    expect(AndromedaError.isInstance(foreign)).toBe(true)
    expect(QuotaExceededError.isInstance(foreign)).toBe(false)
    expect(AndromedaError.isInstance(new Error('plain'))).toBe(false)
  })
  it('isInstance guards work detached, as callbacks', () => {
    const errors: unknown[] = [new StoreError('down', { retryable: true }), new InvalidArgumentError('cost', 'bad'), 7]
    expect(errors.filter(StoreError.isInstance)).toEqual([errors[0]])
    expect(errors.filter(InvalidArgumentError.isInstance)).toEqual([errors[1]])
    expect(errors.filter(AndromedaError.isInstance)).toHaveLength(2)
  })
})
