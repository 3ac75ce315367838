import type { CounterStore } from '@andromeda/core'
import { it } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'

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

/** `it`, with a fresh store from `options` for each test. */
export function storeTest(options: ConformanceOptions) {
  return (name: string, fn: (store: CounterStore) => Promise<void>, timeout?: number) =>
    it(name, () => withStore(options, fn), timeout)
}
