import type { CallControl, SqlDriver } from './driver.js'
import { notPreparedError } from './store-errors.js'

/** How long one reading of the database clock is trusted before it is read again. */
const CLOCK_MAX_AGE_MS = 60_000

/** What the store knows of its database: whether the routines exist, and its clock. */
export interface Preparation {
  readonly driver: SqlDriver
  readonly commandTimeoutMs: number
  /** Lower bound of (database clock - `performance.now()`), ms. */
  clock: { offsetMs: number; refreshAfter: number } | undefined
  /** The migration and clock reading under way, shared by the calls that arrive meanwhile. */
  preparing: Promise<void> | undefined
  migrated: boolean
  /** Set by `close()`: no new work starts. */
  closed: Promise<void> | undefined
}

/** A control of the store's own, bounded by `commandTimeoutMs`, for work no single call owns. */
function ownControl(commandTimeoutMs: number): { control: CallControl; done: () => void } {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), commandTimeoutMs)
  return {
    control: { signal: abort.signal, dueAt: performance.now() + commandTimeoutMs, sent: false },
    done: () => clearTimeout(timer),
  }
}

/**
 * Migrate (once) and read the database clock. Shared by the calls that arrive meanwhile, and
 * bounded on its own, so one caller giving up does not fail the others.
 */
function prepare(p: Preparation): Promise<void> {
  p.preparing ??= (async () => {
    const { control, done } = ownControl(p.commandTimeoutMs)
    try {
      if (!p.migrated) {
        await p.driver.migrate(control)
        p.migrated = true
      }
      await calibrate(p, control)
    } finally {
      done()
      p.preparing = undefined
    }
  })()
  return p.preparing
}

async function calibrate(p: Preparation, control: CallControl): Promise<void> {
  const databaseNow = await p.driver.now(control)
  // The database read its clock before this instant: the offset is at least this.
  const offsetMs = databaseNow - performance.now()
  p.clock = { offsetMs, refreshAfter: performance.now() + CLOCK_MAX_AGE_MS }
}

/** Refresh an old clock reading in the background; calls keep the current one meanwhile. */
function refreshClock(p: Preparation): void {
  if (p.preparing || p.closed) return
  const { control, done } = ownControl(p.commandTimeoutMs)
  p.preparing = calibrate(p, control)
    .catch(() => {})
    .finally(() => {
      done()
      p.preparing = undefined
    })
}

/**
 * Makes sure a call can compute its deadline: prepares the database when it is not (a failure
 * there rejects as "not sent") and returns that work; otherwise refreshes an old clock reading
 * in the background and returns undefined, so a call on a prepared store is sent in the same tick.
 */
export function whilePreparing(p: Preparation, what: string): Promise<void> | undefined {
  if (!p.clock || !p.migrated) return prepareFor(p, what)
  if (performance.now() > p.clock.refreshAfter) refreshClock(p)
  return undefined
}

async function prepareFor(p: Preparation, what: string): Promise<void> {
  try {
    await prepare(p)
  } catch (error) {
    throw notPreparedError(what, error)
  }
}
