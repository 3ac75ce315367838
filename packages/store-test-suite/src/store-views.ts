import { type CounterOp, type CounterStore, StoreError, wrapStore } from '@andromeda/core'
import type fc from 'fast-check'

/**
 * The same store, claiming it can never apply keys together, so `consumeAll` takes its saga
 * path: lets a test cover both paths on a store that can apply everything at once.
 */
export function sagaOnly(store: CounterStore): CounterStore {
  return wrapStore(store, { capabilities: { canApplyTogether: () => false } })
}

/** The same store on the saga path, but `apply` rejects with a StoreError from its `failFrom`-th call on. */
export function failingFrom(store: CounterStore, failFrom: number): CounterStore {
  let calls = 0
  return wrapStore(store, {
    capabilities: { canApplyTogether: () => false },
    call: (method, args, invoke) => {
      if (method !== 'apply') return invoke()
      calls++
      // Give-backs (negative deltas, settles) still reach the store, so a rollback can be observed.
      if (calls >= failFrom && (args[0] as CounterOp[]).some((op) => op.delta > 0)) {
        return Promise.reject(new StoreError('injected fault', { retryable: true }))
      }
      return invoke()
    },
  })
}

/** The same store, with every call started when fast-check's scheduler says so. */
export function scheduled(store: CounterStore, s: fc.Scheduler): CounterStore {
  return wrapStore(store, {
    call: (method, args, invoke) => {
      const label = method === 'apply' ? `apply ${(args[0] as CounterOp[]).map((op) => op.delta).join(',')}` : method
      return s.schedule(Promise.resolve(), label).then(invoke)
    },
  })
}
