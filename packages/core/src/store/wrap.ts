import type { CounterStore, StoreCapabilities } from './contract.js'

/** The methods of a `CounterStore` a wrapper can intercept. */
export type StoreMethod = 'apply' | 'seed' | 'get' | 'set' | 'delete' | 'acquireLock' | 'releaseLock' | 'close'

const METHODS: readonly StoreMethod[] = ['apply', 'seed', 'get', 'set', 'delete', 'acquireLock', 'releaseLock', 'close']

/** What a wrapper changes: some capabilities, and what happens around each call. */
export interface StoreWrapping {
  /** Capabilities to override (the others are the store's). */
  capabilities?: Partial<StoreCapabilities>
  /**
   * Called for every call instead of the store's method, with the method's name, its arguments
   * and `invoke` (the store's own call, which may answer synchronously: `apply` on the memory
   * store). Return what the caller gets: `invoke()`'s answer, or anything else.
   */
  call?(method: StoreMethod, args: unknown[], invoke: () => unknown): unknown
}

/**
 * The same store with `wrapping` around it: every method of the store is kept (an optional
 * one, `close`, only when the store has it, and its injected `clock`), every call goes through `wrapping.call`, and the
 * capabilities are the store's unless overridden. For metrics, fault injection in tests, a
 * view that forces `consumeAll`'s saga.
 *
 * @example
 * ```ts
 * const timed = wrapStore(store, {
 *   call: (method, _args, invoke) => {
 *     const startedAt = performance.now()
 *     const answer = invoke()
 *     void Promise.resolve(answer).finally(() => histogram.record(performance.now() - startedAt, { method }))
 *     return answer
 *   },
 * })
 * ```
 */
export function wrapStore(store: CounterStore, wrapping: StoreWrapping): CounterStore {
  const capabilities: StoreCapabilities = { ...store.capabilities, ...wrapping.capabilities }
  const wrapped: Record<string, unknown> = { capabilities }
  // The store's injected clock is part of what it is: the quota reads it (see `CounterStore.clock`).
  if (typeof store.clock === 'function') wrapped.clock = store.clock
  for (const method of METHODS) {
    const own = (store as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>)[method]
    if (typeof own !== 'function') continue
    const invokeWith = (args: unknown[]) => () => own.apply(store, args)
    wrapped[method] = wrapping.call
      ? (...args: unknown[]) => wrapping.call!(method, args, invokeWith(args))
      : (...args: unknown[]) => own.apply(store, args)
  }
  return wrapped as unknown as CounterStore
}
