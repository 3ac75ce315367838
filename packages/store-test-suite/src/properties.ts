import { type CounterStore, createQuota, InvalidArgumentError } from '@andromeda/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { commandArbitrary, setupArbitrary } from './properties/commands.js'
import { runConcurrent } from './properties/concurrent.js'
import { type PropertyClock, type PropertyOptions, runsOf, seedOf } from './properties/property-options.js'
import { runSequence } from './properties/sequence.js'
import { randomName } from './random.js'
import { withStore } from './store-test.js'

export { PROPERTY_IDS } from './properties/commands.js'
export { createManualClock, type PropertyClock, type PropertyOptions } from './properties/property-options.js'

type Params = fc.Parameters<unknown>

/**
 * Model-based property tests for a `CounterStore` through the engine: random sequences of
 * consume / refund / get / set / reset / transact / consumeAll / idempotent replays (and, with a
 * clock, time moving past TTLs, idempotency records and period windows), over a few quotas and
 * ids that look like separators, hash tags and prototype properties, each step checked against
 * a pure model of the guarantees; and concurrent consumes, refunds and consumeAlls started in a
 * random order, checked against the ledger. Call it at the top level of a vitest file.
 *
 * A failure prints the shrunk command sequence and the seed; replay it with
 * `ANDROMEDA_PROPERTY_SEED=<seed>` (or the `seed` option).
 *
 * @example
 * ```ts
 * // test/properties.test.ts
 * import { createManualClock, runStoreProperties } from '@andromeda/store-test-suite'
 * import { createMemoryStore } from '@andromeda/memory'
 *
 * const clock = createManualClock()
 * runStoreProperties({ name: 'memory', clock, createStore: () => createMemoryStore({ clock: clock.now }) })
 * ```
 */
export function runStoreProperties<S extends CounterStore>(options: PropertyOptions<S>): void {
  const seed = seedOf(options)
  const params = (numRuns: number): Params => ({
    numRuns: runsOf(options, numRuns),
    ...(seed === undefined ? {} : { seed }),
  })
  const clocked = options.clock !== undefined
  const all = options as PropertyOptions

  describe(`model-based properties on ${options.name}`, () => {
    it(
      `random sequences of quota operations${clocked ? ' and time moves' : ''} agree with the model at every step`,
      () => withStore(all, (store) => modelProperty(store, options.clock, params(200))),
      120_000,
    )

    it(
      'concurrent consumes, refunds and consumeAlls in any order: usage == loaded + granted - refunded, within [0, limit]',
      () => withStore(all, (store) => concurrencyProperty(store, params(100))),
      120_000,
    )

    it('an idempotent replay reports the lifetime the recorded call reported, less the time since', () =>
      withStore(all, (store) => replayLifetimeCheck(store, options.clock)))

    it(
      'bad arguments are InvalidArgumentErrors naming the argument and never touch a counter',
      () => withStore(all, (store) => badArgumentsProperty(store, params(100))),
      120_000,
    )
  })
}

/** Random command sequences (and, with a clock, time moves) agree with the model at every step. */
async function modelProperty(store: CounterStore, clock: PropertyClock | undefined, params: Params): Promise<void> {
  const clocked = clock !== undefined
  await fc.assert(
    fc.asyncProperty(
      setupArbitrary(clocked),
      fc.array(commandArbitrary(clocked), { maxLength: 30 }),
      (setup, commands) => runSequence({ store, clock }, setup, commands),
    ),
    params,
  )
}

/** Batches of consumes, refunds and consumeAlls, their store calls started in any order, keep the ledger. */
async function concurrencyProperty(store: CounterStore, params: Params): Promise<void> {
  const op = fc.record({
    kind: fc.constantFrom('consume' as const, 'consume' as const, 'refund' as const, 'consumeAll' as const),
    id: fc.integer({ min: 0, max: 1 }),
    cost: fc.integer({ min: 0, max: 3 }),
  })
  const setup = fc.record({
    limit: fc.integer({ min: 0, max: 10 }),
    otherLimit: fc.integer({ min: 0, max: 10 }),
    loaded: fc.option(fc.integer({ min: 0, max: 10 })),
    saga: fc.boolean(),
  })
  await fc.assert(
    fc.asyncProperty(fc.scheduler(), setup, fc.array(op, { minLength: 1, maxLength: 40 }), (s, drawn, ops) =>
      runConcurrent(store, s, drawn, ops),
    ),
    params,
  )
}

/** A replay's `resetAt` is the recorded call's: the lifetime the store replays has shrunk by the time since. */
async function replayLifetimeCheck(store: CounterStore, clock: PropertyClock | undefined): Promise<void> {
  // The engine's clock is frozen, so resetAt moves only with the lifetime the store reports:
  // a store that replays the recorded ttlMs as it was would report the same resetAt later on.
  // Frozen where the store's injected clock is now (one time source: a quota's clock may not disagree with it).
  const frozenAt = clock?.now() ?? Date.now()
  const quota = createQuota({ name: randomName('replay'), store, limit: 5, ttlMs: 600_000, clock: () => frozenAt })
  const first = await quota.consume('a', 1, { idempotencyKey: 'k' })
  expect(first.resetAt).toBeDefined()
  const recordedAt = clock?.now() ?? Date.now()
  if (clock) await clock.advance(50)
  else while (Date.now() - recordedAt < 50) await new Promise((resolve) => setTimeout(resolve, 10))
  const replay = await quota.consume('a', 1, { idempotencyKey: 'k' })
  expect(replay).toMatchObject({ status: 'replayed', allowed: true, usage: 1 })
  expect(replay.resetAt).toBeLessThan(first.resetAt!)
}

/** Random non-counts as cost and usage are refused naming the argument, and leave the counter as it was. */
async function badArgumentsProperty(store: CounterStore, params: Params): Promise<void> {
  const bad = fc.oneof(
    fc.constantFrom<unknown>(-1, 0.5, Number.NaN, Infinity, -Infinity, 2 ** 53, '1', null, true, {}, [], () => 1),
    fc.double().filter((n) => !Number.isSafeInteger(n) || n < 0),
    fc.string(),
  )
  await fc.assert(
    fc.asyncProperty(
      bad,
      fc.constantFrom('consume' as const, 'refund' as const, 'set' as const),
      async (value, method) => {
        const quota = createQuota({ name: randomName('bad'), store, limit: 5 })
        await quota.consume('sentinel', 2)
        const call =
          method === 'set' ? quota.set('sentinel', value as number) : quota[method]('sentinel', value as number)
        const error = await call.then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true)
        expect((error as InvalidArgumentError).argument).toBe(method === 'set' ? 'usage' : 'cost')
        expect((await quota.get('sentinel')).usage).toBe(2)
      },
    ),
    params,
  )
}
