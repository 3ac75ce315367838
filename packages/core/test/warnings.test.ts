import { afterEach, describe, expect, it, vi } from 'vitest'
import { createQuota } from '../src/index.js'
import { untouchableStore } from './stub-store.js'

/** A store that other processes see but that is atomic only within this one (a SQL Keyv backend). */
const sharedProcessAtomic = () =>
  untouchableStore({ capabilities: { shared: true, atomic: 'process', canApplyTogether: () => true } })

afterEach(() => {
  vi.restoreAllMocks()
})

describe('ANDROMEDA_PROCESS_ATOMIC_STORE', () => {
  it('is emitted once per process, however many such stores and quotas there are', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    for (let i = 0; i < 5; i++) {
      const store = sharedProcessAtomic()
      createQuota({ name: `a${i}`, store, limit: 1 })
      createQuota({ name: `b${i}`, store, limit: 1 })
    }
    const codes = warn.mock.calls.map((call) => (call[1] as { code?: string } | undefined)?.code)
    expect(codes.filter((code) => code === 'ANDROMEDA_PROCESS_ATOMIC_STORE')).toHaveLength(1)
  })

  it('is not emitted for a store that is not shared, nor for a globally atomic one', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    createQuota({ name: 'local', store: untouchableStore(), limit: 1 })
    createQuota({
      name: 'global',
      store: untouchableStore({ capabilities: { shared: true, atomic: 'global', canApplyTogether: () => true } }),
      limit: 1,
    })
    expect(warn).not.toHaveBeenCalled()
  })
})
