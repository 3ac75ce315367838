import { toStoreError } from './errors.js'
import type { ApplyOptions, CounterStore } from './store/contract.js'
import { wrapStore } from './store/wrap.js'

/** What a store threw, as the engine rethrows it: the caller's own abort reason as it is, else typed. */
export function typedStoreError(error: unknown, signal: AbortSignal | undefined): unknown {
  return signal?.aborted && error === signal.reason ? error : toStoreError(error)
}

/**
 * The user's store with every rejection turned into a typed error: andromeda errors pass as
 * they are, the caller's own abort reason passes as it is, anything else becomes a `StoreError`.
 * Every call answers with a promise.
 */
export function guardStore(store: CounterStore): CounterStore {
  return wrapStore(store, {
    call: async (method, args, invoke) => {
      const signal = method === 'apply' ? (args[1] as ApplyOptions | undefined)?.signal : undefined
      try {
        return await invoke()
      } catch (error) {
        throw typedStoreError(error, signal)
      }
    },
  })
}
