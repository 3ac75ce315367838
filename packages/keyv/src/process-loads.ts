import type { CounterOp } from '@andromeda/core'
import { lockKey } from '@andromeda/core/store'
import type { PlannedWrite } from './backend.js'
import type { CounterEntry, ReadEntry } from './process-call.js'

/**
 * Give-backs and loads on the process-atomic path (see `CounterOp` in @andromeda/core): an op
 * that gives units back to a missing counter deletes the counter's loader lock, so a load that
 * read the system of record before the give-back cannot seed what it read. The loader lock is an
 * entry like any other (`acquireLock` holds its key), so a call that may revoke one holds that
 * key too, and the revocation is one more write of the call.
 */

/** An op that gives units back: a refund, or a settle (which gives back what it does not keep). */
const givesBack = (op: CounterOp): boolean => op.delta < 0 || op.settle !== undefined

/** The loader locks a call may revoke, to hold with its keys. */
export const loadLockKeys = (ops: readonly CounterOp[]): string[] => ops.filter(givesBack).map((op) => lockKey(op.key))

/**
 * The deletes of the loader locks of the counters the call's give-backs find missing, as the
 * call found them before its ops. (A give-back after an op of the same call that created its
 * counter revokes too: harmless, as a seed never sets a counter that exists.) Written whatever
 * the call answers; a replay changes nothing and never gets here.
 */
export async function revokeLoads(
  read: ReadEntry,
  ops: readonly CounterOp[],
  distinct: readonly string[],
  loaded: readonly (CounterEntry | undefined)[],
): Promise<PlannedWrite[]> {
  const missing = new Set(distinct.filter((_, i) => loaded[i] === undefined))
  const counters = [...new Set(ops.filter((op) => givesBack(op) && missing.has(op.key)).map((op) => op.key))]
  const locks = await Promise.all(counters.map((counter) => read(lockKey(counter), 'lock')))
  return counters.flatMap((counter, i) => {
    const previous = locks[i]
    return previous ? [{ key: lockKey(counter), entry: undefined, previous }] : []
  })
}
