import { toStoreError } from './errors.js'
import type { ApplyOptions, CounterOp, CounterStore } from './store.js'

/**
 * The user's store with every rejection turned into a typed error: andromeda errors pass as
 * they are, the caller's own abort reason passes as it is, anything else becomes a `StoreError`.
 */
export function guardStore(store: CounterStore): CounterStore {
  const guard = async <T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
    try {
      return await call()
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error
      throw toStoreError(error)
    }
  }
  return {
    capabilities: store.capabilities,
    apply: (ops: readonly CounterOp[], options?: ApplyOptions) => guard(() => store.apply(ops, options), options?.signal),
    seed: (key, value, ttlMs) => guard(() => store.seed(key, value, ttlMs)),
    get: (key) => guard(() => store.get(key)),
    set: (key, value, ttlMs) => guard(() => store.set(key, value, ttlMs)),
    delete: (key) => guard(() => store.delete(key)),
    acquireLock: (key, token, ttlMs) => guard(() => store.acquireLock(key, token, ttlMs)),
    releaseLock: (key, token) => guard(() => store.releaseLock(key, token)),
  }
}
