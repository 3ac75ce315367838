import { describe, expect, it } from 'vitest'
import { type CounterStore, type StoreMethod, wrapStore } from '../src/index.js'

/** A store whose every method answers at once and says which it was. */
function stubStore(): CounterStore {
  const ok = async () => undefined
  return {
    capabilities: { shared: false, atomic: 'process', canApplyTogether: () => true },
    apply: async () => ({ ok: true, values: [1] }),
    seed: async () => true,
    get: ok,
    set: ok,
    delete: ok,
    acquireLock: async () => true,
    releaseLock: async () => true,
    close: ok,
  }
}

describe('wrapStore', () => {
  it('keeps every method and capability of the store, and sends every call through `call`', async () => {
    const store = stubStore()
    const seen: StoreMethod[] = []
    const wrapped = wrapStore(store, {
      capabilities: { canApplyTogether: () => false },
      call: (method, _args, invoke) => {
        seen.push(method)
        return invoke()
      },
    })
    expect(wrapped.capabilities.shared).toBe(store.capabilities.shared)
    expect(wrapped.capabilities.atomic).toBe(store.capabilities.atomic)
    expect(wrapped.capabilities.canApplyTogether(['a', 'b'])).toBe(false)
    await wrapped.apply([{ key: 'k', delta: 1, max: 5, ifMissing: 'create' }])
    await wrapped.seed('k', 1)
    await wrapped.get('k')
    await wrapped.set('k', 2)
    await wrapped.delete('k')
    await wrapped.acquireLock('l', 't', 100)
    await wrapped.releaseLock('l', 't')
    await wrapped.close?.()
    expect(seen).toEqual(['apply', 'seed', 'get', 'set', 'delete', 'acquireLock', 'releaseLock', 'close'])
  })

  it('keeps an optional method only when the store has it, and a synchronous answer synchronous', () => {
    const answer = { ok: true as const, values: [1] }
    const bare: CounterStore = { ...stubStore(), apply: () => answer }
    delete (bare as { close?: unknown }).close
    const wrapped = wrapStore(bare, {})
    expect(wrapped.close).toBeUndefined()
    expect(wrapped.apply([{ key: 'k', delta: 1, ifMissing: 'create' }])).toBe(answer)
  })
})
