import type { ApplyOptions, ApplyResult, CounterOp, CounterStore } from '@andromeda/core'

/** What `createRedisStore` returns: a `CounterStore` whose calls all answer with promises and whose `close()` is always there. */
export interface RedisCounterStore extends CounterStore {
  apply(ops: readonly CounterOp[], options?: ApplyOptions): Promise<ApplyResult>
  /**
   * Wait for the calls in flight (each bounded by `commandTimeoutMs`), detach from the client
   * and resolve; later calls reject with a `StoreError`. The client stays open: it is yours.
   * Safe to call twice.
   */
  close(): Promise<void>
}
