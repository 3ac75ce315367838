import type { CounterStore } from '@andromeda/core'
import type { ConformanceOptions } from '../conformance-options.js'

/**
 * A clock the suite can move. Hand the same clock to the store (its expiry clock) and to the
 * suite: the engine is given `now()` too, so periods and TTLs can be crossed without waiting.
 */
export interface PropertyClock {
  now(): number
  advance(ms: number): void | Promise<void>
}

/** A clock that only moves when told to. */
export function createManualClock(startAt = Date.UTC(2026, 0, 1)): PropertyClock {
  let now = startAt
  return {
    now: () => now,
    advance(ms) {
      now += ms
    },
  }
}

/** Options of `runStoreProperties`: those of the conformance suite, plus run control. */
export interface PropertyOptions<S extends CounterStore = CounterStore> extends ConformanceOptions<S> {
  /**
   * Runs per property (default: `ANDROMEDA_PROPERTY_RUNS` from the environment, else 200 for
   * the model and 100 for the others). Each run is a fresh random sequence on fresh quota names.
   */
  numRuns?: number
  /**
   * The clock the store reads (and the engine is given). With it, sequences also move time
   * past TTLs, idempotency records and period windows. Without it (a store on real time, such
   * as Redis), time never moves during a run: TTLs are long and time commands are left out.
   */
  clock?: PropertyClock
  /** fast-check seed, to replay a failure. Default: `ANDROMEDA_PROPERTY_SEED` from the environment, else random (printed on failure). */
  seed?: number
}

/** Runs per property: the option, else `ANDROMEDA_PROPERTY_RUNS`, else `fallback`. */
export function runsOf(options: PropertyOptions, fallback: number): number {
  if (options.numRuns !== undefined) return options.numRuns
  const fromEnv = Number(process.env.ANDROMEDA_PROPERTY_RUNS)
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : fallback
}

/** The fast-check seed: the option, else `ANDROMEDA_PROPERTY_SEED`, else none (random). */
export function seedOf(options: PropertyOptions): number | undefined {
  if (options.seed !== undefined) return options.seed
  const fromEnv = process.env.ANDROMEDA_PROPERTY_SEED
  return fromEnv === undefined || fromEnv === '' ? undefined : Number(fromEnv)
}
