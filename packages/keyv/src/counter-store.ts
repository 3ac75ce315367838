import type { CounterStore } from '@andromeda/core'

/** What `createKeyvStore` returns: a `CounterStore` whose `close()` is always there. */
export interface KeyvCounterStore extends CounterStore {
  /**
   * Detach the store (its listener on the Keyv instance, the client it opened on @keyv/redis);
   * later calls reject with a `StoreError`. Your Keyv and its adapter stay open. Safe to call twice.
   */
  close(): Promise<void>
}
