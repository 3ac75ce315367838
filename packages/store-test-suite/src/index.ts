import type { CounterStore } from '@andromeda/core'
import { applyTests } from './apply.js'
import type { ConformanceOptions } from './conformance-options.js'
import { engineTests } from './engine.js'
import { holdTests } from './holds.js'
import { idempotencyTests } from './idempotency.js'
import { loadTests } from './loads.js'
import { lockTests } from './locks.js'
import { timeTests } from './time.js'
import { transactionTests } from './transactions.js'
import { ttlTests } from './ttl.js'

export type { ConformanceConcerns, ConformanceOptions } from './conformance-options.js'
export {
  createManualClock,
  PROPERTY_IDS,
  type PropertyClock,
  type PropertyOptions,
  runStoreProperties,
} from './properties.js'
export { keyGroup, randomKey, randomName } from './random.js'
export { sagaOnly } from './store-views.js'
export {
  applyTests,
  engineTests,
  holdTests,
  idempotencyTests,
  loadTests,
  lockTests,
  timeTests,
  transactionTests,
  ttlTests,
}

/**
 * Run the CounterStore conformance suite: every contract method (limit, floor, missing,
 * all-or-nothing, TTL set on create and never re-armed, set-if-absent, lock ownership,
 * idempotent replay, 200-way concurrency, values near 2^53, key isolation) and the engine's
 * guarantees (`createQuota`, `consumeAll`) on top of the store. Call it at the top level of a
 * vitest test file; it registers `describe` blocks.
 *
 * Tests use random keys, so stores handed out by `createStore` may share one backend. Each
 * concern is also exported on its own (`applyTests`, `lockTests`, ...); `concerns` leaves some out.
 *
 * @example
 * ```ts
 * // test/conformance.test.ts
 * import { runStoreConformance } from '@andromeda/store-test-suite'
 * import { createMemoryStore } from '@andromeda/memory'
 *
 * runStoreConformance({ name: 'memory', createStore: () => createMemoryStore() })
 * // A store without locks: runStoreConformance({ ..., concerns: { locks: false } })
 * ```
 */
export function runStoreConformance<S extends CounterStore>(options: ConformanceOptions<S>): void {
  const run = options.concerns ?? {}
  const all = options as ConformanceOptions
  if (run.apply !== false) applyTests(all)
  if (run.ttl !== false) ttlTests(all)
  if (run.locks !== false) {
    lockTests(all)
    loadTests(all)
  }
  if (run.idempotency !== false) idempotencyTests(all)
  if (run.holds !== false) holdTests(all)
  if (run.engine !== false) engineTests(all)
  if (run.transactions !== false) transactionTests(all)
  if (run.time !== false) timeTests(all)
}
