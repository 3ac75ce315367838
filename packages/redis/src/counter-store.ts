import type { CounterStore } from '@andromeda/core'

/** What `createRedisStore` returns: a `CounterStore` whose `close()` is always there. */
export interface RedisCounterStore extends CounterStore {
  /**
   * Wait for the calls in flight (each bounded by `commandTimeoutMs`), detach from the client
   * and resolve; later calls reject with a `StoreError`. The client stays open: it is yours.
   * Safe to call twice.
   */
  close(): Promise<void>
}
