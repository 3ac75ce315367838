import { contractTests } from './contract.js'
import { holdTests } from './holds.js'
import { engineTests } from './engine.js'
import { timeTests } from './time.js'
import type { CounterStore } from '@andromeda/core'
import type { ConformanceOptions } from './options.js'

export type { ConformanceOptions } from './options.js'
export { keyGroup, randomKey, randomName, sagaOnly } from './options.js'
export { createManualClock, PROPERTY_IDS, type PropertyClock, type PropertyOptions, runStoreProperties } from './properties.js'

/**
 * Run the CounterStore conformance suite: every contract method (limit, floor, missing,
 * all-or-nothing, TTL set on create and never re-armed, set-if-absent, lock ownership,
 * idempotent replay, 200-way concurrency, values near 2^53, key isolation) and the engine's
 * guarantees (`createQuota`, `consumeAll`) on top of the store. Call it at the top level of a
 * vitest test file; it registers `describe` blocks.
 *
 * Tests use random keys, so stores handed out by `createStore` may share one backend.
 *
 * @example
 * ```ts
 * // test/conformance.test.ts
 * import { runStoreConformance } from '@andromeda/store-test-suite'
 * import { createMemoryStore } from '@andromeda/memory'
 *
 * runStoreConformance({ name: 'memory', createStore: () => createMemoryStore() })
 * ```
 */
export function runStoreConformance<S extends CounterStore>(options: ConformanceOptions<S>): void {
  contractTests(options)
  holdTests(options)
  engineTests(options)
  timeTests(options as ConformanceOptions)
}
