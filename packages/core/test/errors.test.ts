import { describe, expect, it, vi } from 'vitest'
import { AndromedaError, InvalidArgumentError, QuotaExceededError, StoreError } from '../src/index.js'

describe('errors', () => {
  it('carry a stable code and an argument name', () => {
    const error = new InvalidArgumentError('cost', 'must be a safe integer >= 0, got 0.5')
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', argument: 'cost', name: 'InvalidArgumentError' })
    expect(new StoreError('down', { retryable: true })).toMatchObject({ code: 'ERR_STORE', retryable: true })
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
})
