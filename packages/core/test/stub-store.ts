import type { CounterStore } from '../src/index.js'

/**
 * A store whose every method fails the test if called: proves a call was rejected before
 * touching the store. Methods can be replaced per test.
 */
export function untouchableStore(overrides: Partial<CounterStore> = {}): CounterStore & { calls: string[] } {
  const calls: string[] = []
  const fail = (method: string) => () => {
    calls.push(method)
    return Promise.reject(new Error(`store.${method}() must not be called`))
  }
  return {
    calls,
    capabilities: { shared: false, atomic: 'process', canApplyTogether: () => true },
    apply: fail('apply'),
    seed: fail('seed'),
    get: fail('get'),
    set: fail('set'),
    delete: fail('delete'),
    acquireLock: fail('acquireLock'),
    releaseLock: fail('releaseLock'),
    ...overrides,
  }
}
