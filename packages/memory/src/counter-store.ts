import type { ApplyOptions, ApplyResult, CounterOp, CounterStore } from '@andromeda/core'

/**
 * What `createMemoryStore` returns: a `CounterStore` whose optional members are always there,
 * so `store.close()` and `store.applySync()` need no check.
 */
export interface MemoryCounterStore extends CounterStore {
  /** `apply`, synchronously: the engine's hot path uses it to skip a promise per call. */
  applySync(ops: readonly CounterOp[], options?: ApplyOptions): ApplyResult
  /** Forget every counter; afterwards every method rejects with a `StoreError`. Safe to call twice. */
  close(): Promise<void>
}
