import type { CounterStore } from '@andromeda/core'

/**
 * The concerns of the conformance suite, each a set of tests exported on its own. Set one to
 * `false` to leave out what a store does not offer (`{ locks: false }`); every concern runs by default.
 */
export interface ConformanceConcerns {
  /** `apply()` and the plain counter methods (`applyTests`). */
  apply?: boolean
  /** Counter lifetimes (`ttlTests`). */
  ttl?: boolean
  /** Idempotency records at the store (`idempotencyTests`). */
  idempotency?: boolean
  /** `acquireLock` / `releaseLock` (`lockTests`), and the engine's loads that run under them (`loadTests`). */
  locks?: boolean
  /** Holds and settles (`holdTests`). */
  holds?: boolean
  /** Time, windows and idempotency through the engine (`timeTests`). */
  time?: boolean
  /** Single-quota engine scenarios (`engineTests`). */
  engine?: boolean
  /** `transact`, `consumeAll` and `transactAll` (`transactionTests`). */
  transactions?: boolean
}

/**
 * How the suite gets and disposes of stores. `S` is what your factory returns, so `destroyStore`
 * sees its concrete type (`store.close()` without `?.` for a store whose `close` is always there).
 */
export interface ConformanceOptions<S extends CounterStore = CounterStore> {
  /** Shown in the test names, e.g. `'redis (ioredis)'`. */
  name: string
  /**
   * A store for one test. Tests use random keys, so every store may share one backend
   * (one Redis server, one database). Called once per test.
   */
  createStore(): S | Promise<S>
  /** Called after each test with the store `createStore` returned (close a client, etc.). */
  destroyStore?(store: S): void | Promise<void>
  /**
   * How many entries the store's backend holds now (a Map's size, a table's rows), for stores
   * that can tell: the suite then checks that expired counters and idempotency records are
   * reclaimed, so the backend stays within its live entries plus a few. Other tests may share
   * the backend; the suite only compares counts taken during one test.
   */
  size?(store: S): number | Promise<number>
  /** Concerns to leave out (`{ locks: false }`); `runStoreConformance` runs every one by default. */
  concerns?: ConformanceConcerns
}
