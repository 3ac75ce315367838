import { type CounterStore, wrapStore } from '@andromeda/core'
import { randomBytes } from 'node:crypto'

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
}

/** A key no other test (or run) uses, in its own hash-tag group. */
export function randomKey(label = 'k'): string {
  return `{t${randomBytes(6).toString('hex')}}:${label}`
}

/** Keys that share one hash-tag group (so a Cluster store can apply them together). */
export function keyGroup(count: number): string[] {
  const tag = `{t${randomBytes(6).toString('hex')}}`
  return Array.from({ length: count }, (_, i) => `${tag}:k${i}`)
}

export function randomName(label = 'q'): string {
  return `${label}-${randomBytes(6).toString('hex')}`
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Open a store for one test and close it afterwards, whatever happens. */
export async function withStore<T>(options: ConformanceOptions, fn: (store: CounterStore) => Promise<T>): Promise<T> {
  const store = await options.createStore()
  try {
    return await fn(store)
  } finally {
    await options.destroyStore?.(store)
  }
}

/**
 * The same store, claiming it can never apply keys together, so `consumeAll` takes its saga
 * path: lets a test cover both paths on a store that can apply everything at once.
 */
export function sagaOnly(store: CounterStore): CounterStore {
  return wrapStore(store, { capabilities: { canApplyTogether: () => false } })
}
