import { toStoreError } from './errors.js'
import type { ApplyOptions, CounterOp, CounterStore } from './store.js'

/** What a store threw, as the engine rethrows it: the caller's own abort reason as it is, else typed. */
export function typedStoreError(error: unknown, signal: AbortSignal | undefined): unknown {
  return signal?.aborted && error === signal.reason ? error : toStoreError(error)
}

/**
 * The user's store with every rejection turned into a typed error: andromeda errors pass as
 * they are, the caller's own abort reason passes as it is, anything else becomes a `StoreError`.
 */
export function guardStore(store: CounterStore): CounterStore {
  const guard = async <T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
    try {
      return await call()
    } catch (error) {
      throw typedStoreError(error, signal)
    }
  }
  return {
    capabilities: store.capabilities,
    apply: (ops: readonly CounterOp[], options?: ApplyOptions) => guard(async () => store.apply(ops, options), options?.signal),
    seed: (key, value, ttlMs) => guard(() => store.seed(key, value, ttlMs)),
    get: (key) => guard(() => store.get(key)),
    set: (key, value, ttlMs) => guard(() => store.set(key, value, ttlMs)),
    delete: (key) => guard(() => store.delete(key)),
    acquireLock: (key, token, ttlMs) => guard(() => store.acquireLock(key, token, ttlMs)),
    releaseLock: (key, token) => guard(() => store.releaseLock(key, token)),
  }
}
