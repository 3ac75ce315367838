import type { ApplyOptions, ApplyResult, CounterOp, CounterStore } from '@andromeda/core'

/**
 * What `createMemoryStore` returns: a `CounterStore` whose `apply` answers synchronously and
 * whose `close` is always there, so `store.close()` needs no check.
 */
export interface MemoryCounterStore extends CounterStore {
  /** Answers with the result itself (failures: a rejected promise), so the engine's hot path makes no promise for the store. */
  apply(ops: readonly CounterOp[], options?: ApplyOptions): ApplyResult | Promise<ApplyResult>
  /** Forget every counter; afterwards every method rejects with a `StoreError`. Safe to call twice. */
  close(): Promise<void>
}
